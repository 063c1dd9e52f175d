import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateStateMachineCommand,
  DeleteStateMachineCommand,
  DescribeExecutionCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { resetConfig } from '../../functions/core/config.js';
import { agentChannelActions } from '../../functions/core/denies.js';
import { resetStepContext } from '../../functions/core/handler.js';
import { memberCapabilities } from '../../functions/core/member-roles.js';
import { demoPolicy } from '../../scripts/demo.js';
import { templateOf } from '../../scripts/local/artefact.js';
import { type LocalCase, runLocalCase, runWorkflowLocally } from '../../scripts/local/case.js';
import { startEmulatedEbs } from '../../scripts/local/emulated-ebs.js';
import { mapEvent } from '../../scripts/local/map-event.js';
import { resetMoto } from '../../scripts/local/moto.js';
import { taskScope } from '../../scripts/local/runner.js';
import { seedAccount } from '../../scripts/local/seed.js';
import { deployLocalStack, type LocalStack, localAccountId, localRegion } from '../../scripts/local/stack.js';
import { runBlockIpPlaybook } from '../../scripts/playbooks/block-ip.js';
import { runCredentialPlaybook } from '../../scripts/playbooks/credentials.js';
import { runIdsPlaybook } from '../../scripts/playbooks/ids-alert.js';
import { invoke } from '../../scripts/playbooks/local.js';
import { runPolicyViolationPlaybook } from '../../scripts/playbooks/policy-violation.js';
import { cordon, emulator } from '../support/cli-fixtures.js';
import { installFaults } from '../support/faults.js';
import { readRealEvent, realEventFiles } from '../support/fixtures.js';
import {
  decideAsMember,
  decideForbidden,
  decideRecorded,
  findingTampering,
  forbiddenRequests,
  formatRows,
  functionPrincipal,
  iamWrites,
  investigatorCli,
  investigatorPrincipal,
  localStackNames,
  memberModel,
  type Row,
} from '../support/iam/contract.js';
import { type RecordedRequest, recordRequests } from '../support/iam/record.js';
import { decide, type Principal } from '../support/iam/simulate.js';
import { type RolePolicies, type StackNames, TemplateModel } from '../support/iam/template.js';
import { loadServerlessConfig } from '../support/template-model.js';

/**
 * The IAM contract, offline: every AWS request each function made in the emulated runs (every real
 * event through the forensic workflow in both plans, release, each playbook, the credentials
 * workflow) is decided by AWS's own authorisation data under the packaged template's policies, and
 * must be Allowed; then what no Cordon principal may ever do is decided for every role, and must be
 * Denied. moto enforces no IAM: this is where a missing permission shows before a first deploy.
 */
const endpoint = inject('motoEndpoint');
const artefact = inject('artefactDirs');

interface Scenario {
  name: string;
  requests: RecordedRequest[];
  stack: LocalStack;
}
const scenarios: Scenario[] = [];
let unattributed: string[] = [];
let revocation: { roleName: string; instanceId: string; denyPolicies: unknown[] } | undefined;

/**
 * A session of the contained instance's own role, under the denies revocation put on it, as if the
 * role allowed everything: what is left to it is what the denies leave.
 */
function revokedInstanceSession(r: NonNullable<typeof revocation>): Principal {
  return {
    roleArn: `arn:aws:iam::${localAccountId}:role/${r.roleName}`,
    sessionArn: `arn:aws:sts::${localAccountId}:assumed-role/${r.roleName}/${r.instanceId}`,
    account: localAccountId,
    identityPolicies: [
      {
        name: 'allow-all',
        policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] },
      },
      ...r.denyPolicies.map((policy, n) => ({ name: `cordon-revoke-${n}`, policy })),
    ],
  };
}

async function recorded<T>(name: string, run: () => Promise<T>): Promise<T> {
  const recording = recordRequests(() => endpoint);
  try {
    const out = await run();
    scenarios.push({ name, requests: recording.requests, stack: await deployLocalStack(endpoint, 'dev') });
    unattributed = [...unattributed, ...recording.unattributed.map((op) => `${name}: ${op}`)];
    return out;
  } finally {
    recording.uninstall();
  }
}

async function motoConfig(config: object): Promise<void> {
  const res = await fetch(`${endpoint}/moto-api/config`, { method: 'POST', body: JSON.stringify(config) });
  if (!res.ok) throw new Error(`moto refused its configuration: ${res.status}`);
}

/**
 * ids-alert-stop acts on the end of a forensic execution, read with DescribeExecution. The local
 * runner's executions are not moto's, so the stack's forensic state machine in moto is replaced, under
 * its own name, by a STAND-IN (one Pass state whose result is the contained case's real final state,
 * run by moto itself) that ends as an IDS execution asking for a stop would; the function is then
 * invoked with EventBridge's event for that execution.
 */
async function stopAfterSealedCase(contained: LocalCase): Promise<unknown> {
  await motoConfig({ stepfunctions: { execute_state_machine: true } });
  try {
    const sfn = new SFNClient({
      endpoint,
      region: localRegion,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    await sfn.send(
      new DeleteStateMachineCommand({ stateMachineArn: contained.stack.forensicsStateMachineArn }),
    );
    const machine = await sfn.send(
      new CreateStateMachineCommand({
        name: contained.stack.forensicsStateMachineArn.split(':').pop(),
        roleArn: `arn:aws:iam::${localAccountId}:role/stand-in`,
        definition: JSON.stringify({
          StartAt: 'Sealed',
          States: { Sealed: { Type: 'Pass', Result: contained.output, End: true } },
        }),
      }),
    );
    const started = await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: machine.stateMachineArn,
        name: `ids-stop-${Date.now()}`,
        input: '{}',
      }),
    );
    for (let i = 0; i < 100; i += 1) {
      const d = await sfn.send(new DescribeExecutionCommand({ executionArn: started.executionArn }));
      if (d.status !== 'RUNNING') break;
      await sleep(50);
    }
    process.env.FORENSICS_STATE_MACHINE_ARN = machine.stateMachineArn;
    resetConfig();
    resetStepContext();
    return await invoke('ids-alert-stop', {
      source: 'aws.states',
      'detail-type': 'Step Functions Execution Status Change',
      detail: {
        executionArn: started.executionArn,
        stateMachineArn: machine.stateMachineArn,
        name: started.executionArn?.split(':').pop(),
        status: 'SUCCEEDED',
      },
    });
  } finally {
    await motoConfig({ stepfunctions: { execute_state_machine: false } });
  }
}

/**
 * A trigger whose case Intake opens and cannot finish: storing the trigger is throttled on every
 * attempt, past Intake's retries, so the workflow holds the trigger and closes that case.
 */
async function heldTrigger(): Promise<unknown> {
  const stack = await deployLocalStack(endpoint, 'dev');
  const seeded = await seedAccount(endpoint, { vpcEndpoints: true });
  const { event } = mapEvent(readRealEvent('gd_detail_canary_ec2_stateless_integtest.json'), {
    instanceId: seeded.instanceId,
    accountId: localAccountId,
    region: localRegion,
  });
  const executionArn = `${stack.forensicsStateMachineArn.replace(':stateMachine:', ':execution:')}:held`;
  const faults = installFaults();
  try {
    faults.arm(executionArn, [{ stateName: 'Intake Finding', operation: 's3:PutObject', mode: 'throttled' }]);
    const run = await runWorkflowLocally(stack, 'forensics', event, { executionArn });
    if (!run.steps.some((s) => s.name === 'Hold Trigger' && s.status === 'succeeded')) {
      throw new Error(`The trigger was not held: ${JSON.stringify(run.steps)}`);
    }
    return run;
  } finally {
    faults.uninstall();
  }
}

/**
 * An investigator's `cordon evidence disk` on a sealed case, as the investigator role: raw images
 * (through the emulated EBS data plane, since moto's snapshots hold no blocks), then volumes attached
 * to a forensic workstation with a key tagged for it, then detached. Every request is the CLI's.
 */
async function investigatorDisks(sealed: LocalCase): Promise<void> {
  const caseId = sealed.report.caseId as string;
  const workstation = await new EC2Client(emulator(endpoint)).send(
    new RunInstancesCommand({
      ImageId: 'ami-12c6146b',
      MinCount: 1,
      MaxCount: 1,
      SubnetId: sealed.seeded.subnetIds[0],
    }),
  );
  const key = await new KMSClient(emulator(endpoint)).send(
    new CreateKeyCommand({ Tags: [{ TagKey: 'cordon:purpose', TagValue: 'forensic-volumes' }] }),
  );
  const plane = await startEmulatedEbs(endpoint);
  const dir = await mkdtemp(join(tmpdir(), 'cordon-iam-disk-'));
  try {
    await taskScope.run(
      { stateName: 'cordon evidence disk', executionArn: '', fn: investigatorCli },
      async () => {
        for (const args of [
          ['--image', dir],
          [
            '--attach-to',
            workstation.Instances?.[0]?.InstanceId as string,
            '--kms-key',
            key.KeyMetadata?.Arn as string,
          ],
          ['--detach'],
        ]) {
          const run = await cordon(plane.endpoint, ['evidence', 'disk', caseId, ...args]);
          if (run.code !== 0)
            throw new Error(`cordon evidence disk ${args[0]} failed: ${run.stderr}${run.stdout}`);
        }
      },
    );
  } finally {
    await plane.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function homeModel(stack: LocalStack): { model: TemplateModel; names: StackNames } {
  const names = localStackNames(stack, localAccountId, localRegion);
  return { model: TemplateModel.fromFile(templateOf(artefact.dev), names), names };
}

/** The functions that parse text an attacker can shape: a finding, a CloudTrail event, an IDS alert. */
const untrustedInputReaders = [
  'intake-finding',
  'credential-intake',
  'block-ip',
  'policy-violation',
  'ids-alert',
];

/** A session of a member role, as a function's AssumeRole gets it. */
function memberSession(role: RolePolicies, account: string): Principal {
  return {
    roleArn: role.arn,
    sessionArn: `arn:aws:sts::${account}:assumed-role/${role.name}/cordon-case`,
    account,
    identityPolicies: role.identityPolicies,
  };
}

/** Handing any role of the account to EC2: an instance profile can then do what that role does. */
const passAnyRole = (account: string) => ({
  what: 'pass any role to EC2',
  auth: {
    action: 'iam:PassRole',
    resource: `arn:aws:iam::${account}:role/any-role`,
    context: { 'iam:PassedToService': 'ec2.amazonaws.com' },
  },
});

let recordedRows: Row[] = [];
/** Member-role decisions with Release allowed to restore profiles, and with the template's defaults. */
let memberRows: Row[] = [];
let memberDefaultRows: Row[] = [];

beforeAll(async () => {
  await resetMoto(endpoint);
  let first: LocalCase | undefined;
  for (const file of realEventFiles()) {
    const run = await recorded(`demo ${file}`, () => runLocalCase(readRealEvent(file), { endpoint }));
    if (!first && run.report.outcome === 'completed') first = run;
  }
  if (!first) throw new Error('No real event completed a case: nothing to release');
  const contained = first;
  await recorded('capture-first plan', () =>
    runLocalCase(readRealEvent('gd_detail_canary_ec2_stateless_integtest.json'), {
      endpoint,
      vpcEndpoints: false,
    }),
  );
  // The responses that do not contain at once: an instance marked for its evidence only, and a case
  // whose Request Approval records its wait and asks a person (the run stops there, its evidence taken).
  for (const response of ['evidence-only', 'approve'] as const) {
    const { policy, tags } = demoPolicy(response);
    const run = await recorded(`response ${response}`, () =>
      runLocalCase(readRealEvent('gd_detail_canary_ec2_stateless_integtest.json'), {
        endpoint,
        responsePolicy: policy,
        instanceTags: tags,
      }),
    );
    const expected = response === 'approve' ? 'awaiting-approval' : 'completed';
    if (run.report.outcome !== expected) {
      throw new Error(
        `The ${response} case ended ${run.report.outcome}, not ${expected}: ${run.report.reason}`,
      );
    }
  }
  await recorded('release', () =>
    runWorkflowLocally(contained.stack, 'release', { caseId: contained.report.caseId }),
  );
  await recorded('ids-alert-stop after sealed evidence', () => stopAfterSealedCase(contained));
  await recorded('investigator: evidence disk', () => investigatorDisks(contained));
  // Every deny revocation put on the contained instance's role (containment's, and the one on the
  // sessions issued before it).
  const denies = scenarios
    .flatMap((s) => s.requests)
    .filter(
      (r) =>
        r.fn === 'revoke-credentials' &&
        r.operation === 'iam:PutRolePolicy' &&
        String(r.input.PolicyDocument).includes(contained.seeded.instanceId),
    );
  const [firstDeny] = denies;
  if (firstDeny) {
    revocation = {
      roleName: firstDeny.input.RoleName as string,
      instanceId: contained.seeded.instanceId,
      denyPolicies: denies.map((r) => JSON.parse(r.input.PolicyDocument as string)),
    };
  }
  // The playbooks reset the emulator: each is decided with the stack it ran on.
  await recorded('block-ip playbook', () => runBlockIpPlaybook({ endpoint }));
  await recorded('ids-alert playbook', () => runIdsPlaybook({ endpoint, stop: true }));
  await recorded('policy-violation playbook', () => runPolicyViolationPlaybook({ endpoint }));
  await recorded('credentials playbook', () => runCredentialPlaybook({ endpoint }));
  await recorded('credentials playbook, exfiltration', () =>
    runCredentialPlaybook({ endpoint, exfiltration: true }),
  );
  await recorded('a trigger Intake cannot take in', heldTrigger);

  for (const s of scenarios) {
    const home = homeModel(s.stack);
    recordedRows = [...recordedRows, ...(await decideRecorded(s.requests, home.model, home.names))];
    const restoring = memberModel(home.names, 'dev', { AllowReleaseToRestoreProfiles: 'true' });
    memberRows = [...memberRows, ...(await decideAsMember(s.requests, home, restoring))];
    memberDefaultRows = [
      ...memberDefaultRows,
      ...(await decideAsMember(s.requests, home, memberModel(home.names, 'dev'))),
    ];
  }
}, 600_000);

afterAll(() => {
  // The table a reviewer reads, beside the run's other output.
  const table = `${formatRows(recordedRows)}\n\nAs the member role in another account:\n${formatRows(memberRows)}\n`;
  writeFileSync(join(artefact.dev, '..', 'iam-contract.txt'), table);
  console.log(`IAM contract (${recordedRows.length + memberRows.length} decisions):\n${table}`);
});

describe('the recorded requests', () => {
  it('were all made inside a function, so that each has a role to decide it', () => {
    expect(unattributed).toEqual([]);
    expect(scenarios.flatMap((s) => s.requests).length).toBeGreaterThan(100);
  });

  it('cover every function that serverless.yml defines', () => {
    const seen = new Set(scenarios.flatMap((s) => s.requests.map((r) => r.fn)));
    expect(Object.keys(loadServerlessConfig().functions).filter((fn) => !seen.has(fn))).toEqual([]);
  });
});

describe('each request a function made with its own role', () => {
  it('is a request AWS knows: every action, resource ARN and context key is valid', () => {
    const invalid = recordedRows.filter((r) => r.verdict.invalid);
    expect(invalid.map((r) => `${r.fn} ${r.action} ${r.resource}: ${r.verdict.invalid}`)).toEqual([]);
  });

  it('is Allowed by the packaged template', () => {
    const refused = recordedRows.filter((r) => r.verdict.decision !== 'Allowed');
    expect(formatRows(refused).split('\n').slice(1)).toEqual([]);
  });
});

describe('the Security Hub updates', () => {
  it('were made by the four steps that make them, each in the region that holds the finding, and Allowed', () => {
    const rows = recordedRows.filter((r) => r.action === 'securityhub:BatchUpdateFindings');
    expect([...new Set(rows.map((r) => r.fn))].sort()).toEqual([
      'credential-intake',
      'credential-notify',
      'intake-finding',
      'notify-outcome',
    ]);
    // The custom-action finding lives in ap-southeast-2, whatever the stack's region.
    expect(new Set(rows.map((r) => r.resource))).toEqual(
      new Set([
        `arn:aws:securityhub:${localRegion}:${localAccountId}:hub/default`,
        `arn:aws:securityhub:ap-southeast-2:${localAccountId}:hub/default`,
      ]),
    );
    expect(rows.filter((r) => r.verdict.decision !== 'Allowed')).toEqual([]);
  });
});

describe('the investigator role', () => {
  it('made every request of cordon evidence disk --image, --attach-to and --detach, each Allowed', () => {
    const rows = recordedRows.filter((r) => r.fn === investigatorCli);
    expect([...new Set(rows.map((r) => r.action))].sort()).toEqual(
      expect.arrayContaining([
        'dynamodb:PutItem',
        'ebs:GetSnapshotBlock',
        'ebs:ListSnapshotBlocks',
        'ec2:AttachVolume',
        'ec2:CreateVolume',
        'ec2:DeleteVolume',
        'ec2:DetachVolume',
        'kms:CreateGrant',
        'kms:Sign',
        's3:PutObject',
      ]),
    );
    expect(
      formatRows(rows.filter((r) => r.verdict.decision !== 'Allowed'))
        .split('\n')
        .slice(1),
    ).toEqual([]);
  });

  it('may not attach to an instance a case holds, write a case’s own timeline items, or delete a snapshot', async () => {
    const stack = scenarios[0]?.stack as LocalStack;
    const home = homeModel(stack);
    const principal = investigatorPrincipal(home.model, home.names);
    const arn = (type: string, id: string) => `arn:aws:ec2:${localRegion}:${localAccountId}:${type}/${id}`;
    const refused: [
      string,
      { action: string; resource: string; context: Record<string, string | string[]> },
    ][] = [
      [
        'attach a volume to an instance a case holds',
        {
          action: 'ec2:AttachVolume',
          resource: arn('instance', 'i-0123456789abcdef0'),
          context: { 'aws:ResourceTag/cordon:case-id': 'c', 'ec2:ResourceTag/cordon:case-id': 'c' },
        },
      ],
      [
        'delete a volume that is not an investigation volume',
        {
          action: 'ec2:DeleteVolume',
          resource: arn('volume', 'vol-0123456789abcdef0'),
          context: { 'aws:ResourceTag/cordon:case-id': 'c', 'aws:ResourceTag/cordon:purpose': 'evidence' },
        },
      ],
      [
        'write a case item or a step’s timeline event',
        {
          action: 'dynamodb:PutItem',
          resource: `arn:aws:dynamodb:${localRegion}:${localAccountId}:table/${stack.table}`,
          context: { 'dynamodb:LeadingKeys': ['CASE#c'] },
        },
      ],
      [
        'delete a snapshot',
        {
          action: 'ec2:DeleteSnapshot',
          resource: `arn:aws:ec2:${localRegion}::snapshot/snap-0123456789abcdef0`,
          context: {},
        },
      ],
      [
        'overwrite an addendum',
        {
          action: 's3:PutObject',
          resource: `arn:aws:s3:::${stack.bucket}/cases/c/addenda/disk-image-snap-0123456789abcdef0.json`,
          context: {},
        },
      ],
      [
        'sign with the manifest signing key',
        {
          action: 'kms:Sign',
          resource: stack.signingKeyId,
          context: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256', 'kms:MessageType': 'RAW' },
        },
      ],
    ];
    const allowed = [];
    for (const [what, auth] of refused) {
      const verdict = await decide(principal, auth, localRegion, home.model.resourcePolicyFor(auth.resource));
      if (verdict.decision === 'Allowed') allowed.push(what);
    }
    expect(allowed).toEqual([]);
  });
});

describe('each request made through the member role, for an instance in a member account', () => {
  it('is Allowed by resources/member-account.yml (Release restoring profiles), and so is the function assuming the role', () => {
    expect(memberRows.length).toBeGreaterThan(20);
    const refused = memberRows.filter((r) => r.verdict.decision !== 'Allowed' || r.verdict.invalid);
    expect(formatRows(refused).split('\n').slice(1)).toEqual([]);
  });

  it("refuses, with the template's defaults, only Release putting an instance's own profile back", () => {
    const refused = memberDefaultRows.filter((r) => r.verdict.decision !== 'Allowed');
    expect(refused.length).toBeGreaterThan(0);
    expect([...new Set(refused.map((r) => `${r.fn} ${r.action}`))].sort()).toEqual([
      'release-instance ec2:ReplaceIamInstanceProfileAssociation',
      'release-instance iam:PassRole',
    ]);
  });
});

describe('what no Cordon principal may do', () => {
  const stackOf = () => scenarios[0]?.stack as LocalStack;

  it('is Denied for every role of the packaged template', async () => {
    const home = homeModel(stackOf());
    const forbidden = forbiddenRequests(home.names, stackOf().bucket, {
      evidence: stackOf().evidenceKeyArn,
      signing: stackOf().signingKeyId,
    });
    const roles = home.model.roles();
    expect(roles.length).toBeGreaterThan(27);
    const allowed = [];
    for (const role of roles) {
      const principal: Principal = {
        roleArn: role.arn,
        sessionArn: `arn:aws:sts::${localAccountId}:assumed-role/${role.name}/session`,
        account: localAccountId,
        identityPolicies: role.identityPolicies,
      };
      const verdicts = await decideForbidden(principal, role.logicalId, forbidden, home.model, localRegion);
      allowed.push(...verdicts.filter((v) => v.verdict.decision === 'Allowed'));
    }
    expect(allowed.map((a) => `${a.principal} may ${a.what} (${a.verdict.deciding.join(', ')})`)).toEqual([]);
  });

  it('includes hiding a finding in Security Hub, in any region, for every role of the dev stage', async () => {
    const home = homeModel(stackOf());
    const allowed = [];
    for (const role of home.model.roles()) {
      const principal: Principal = {
        roleArn: role.arn,
        sessionArn: `arn:aws:sts::${localAccountId}:assumed-role/${role.name}/session`,
        account: localAccountId,
        identityPolicies: role.identityPolicies,
      };
      for (const region of [localRegion, 'ap-southeast-2']) {
        const verdicts = await decideForbidden(
          principal,
          role.logicalId,
          findingTampering(localAccountId, region),
          home.model,
          region,
        );
        allowed.push(...verdicts.filter((v) => v.verdict.decision === 'Allowed'));
      }
    }
    expect(allowed.map((a) => `${a.principal} may ${a.what} (${a.verdict.deciding.join(', ')})`)).toEqual([]);
  });

  it("includes reading or replacing a host's upload session, for every role but Capture Memory's", async () => {
    const home = homeModel(stackOf());
    const session = `arn:aws:s3:::${stackOf().toolsBucket}/sessions/20260101T000000Z-i-0123456789abcdef0-abcd/memory-upload.env`;
    const capture = loadServerlessConfig().functions['capture-memory']?.role;
    const allowed = [];
    for (const role of home.model.roles().filter((r) => r.logicalId !== capture)) {
      const principal: Principal = {
        roleArn: role.arn,
        sessionArn: `arn:aws:sts::${localAccountId}:assumed-role/${role.name}/session`,
        account: localAccountId,
        // Whatever S3 the role is given, even all of it, the bucket policy decides.
        identityPolicies: [
          ...role.identityPolicies,
          {
            name: 'all-of-s3',
            policy: {
              Version: '2012-10-17',
              Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }],
            },
          },
        ],
      };
      for (const action of ['s3:GetObject', 's3:PutObject']) {
        const verdict = await decide(
          principal,
          { action, resource: session, context: {} },
          localRegion,
          home.model.resourcePolicyFor(session),
        );
        if (verdict.decision === 'Allowed') allowed.push(`${role.logicalId} may ${action}`);
      }
    }
    expect(allowed).toEqual([]);
  });

  it('is Denied for every member role', async () => {
    const home = homeModel(stackOf());
    const member = memberModel(home.names, 'dev');
    const forbidden = forbiddenRequests(home.names, stackOf().bucket, {
      evidence: stackOf().evidenceKeyArn,
      signing: stackOf().signingKeyId,
    });
    const roles = member.model.roles().filter((r) => r.logicalId !== 'QuarantineRole');
    expect(roles.map((r) => r.logicalId).sort()).toEqual(
      Object.keys(memberCapabilities)
        .map((c) => `${c}Role`)
        .sort(),
    );
    const allowed = [];
    for (const role of roles) {
      const verdicts = await decideForbidden(
        memberSession(role, member.names.account),
        role.logicalId,
        forbidden,
        home.model,
        localRegion,
      );
      allowed.push(
        ...verdicts
          .filter((v) => v.verdict.decision === 'Allowed')
          .map((v) => `${role.logicalId} may ${v.what}`),
      );
    }
    expect(allowed).toEqual([]);
  });

  it('includes, for every function that reads text an attacker can shape, assuming any member role that writes IAM', async () => {
    const home = homeModel(stackOf());
    const member = memberModel(home.names, 'dev');
    const roles = member.model.roles().filter((r) => r.logicalId !== 'QuarantineRole');
    const writesIam = new Set<string>();
    for (const role of roles) {
      const verdicts = await decideForbidden(
        memberSession(role, member.names.account),
        role.logicalId,
        [...iamWrites(member.names.account), passAnyRole(member.names.account)],
        member.model,
        localRegion,
      );
      if (verdicts.some((v) => v.verdict.decision === 'Allowed')) writesIam.add(role.logicalId);
    }
    // The split is real: some roles do write IAM, and the rest cannot.
    expect([...writesIam].sort()).toEqual(['CredentialsRole', 'ReleaseRole', 'RevokeRole']);
    const reachable = [];
    for (const fn of untrustedInputReaders) {
      for (const role of roles.filter((r) => writesIam.has(r.logicalId))) {
        const verdict = await decide(
          functionPrincipal(home.model, fn, home.names),
          { action: 'sts:AssumeRole', resource: role.arn, context: { 'sts:RoleSessionName': 'cordon-case' } },
          localRegion,
          { logicalId: `${role.logicalId}(trust)`, policy: role.trustPolicy },
        );
        if (verdict.decision === 'Allowed') reachable.push(`${fn} may assume ${role.logicalId}`);
      }
    }
    expect(reachable).toEqual([]);
  });

  it('lets a step put only its own case events, from cordon, on the default bus', async () => {
    const home = homeModel(stackOf());
    const principal = functionPrincipal(home.model, 'notify-outcome', home.names);
    const bus = (name: string) => `arn:aws:events:${localRegion}:${localAccountId}:event-bus/${name}`;
    const put = (resource: string, context: Record<string, string[]>) =>
      decide(principal, { action: 'events:PutEvents', resource, context }, localRegion).then(
        (v) => v.decision,
      );
    const failed = { 'events:source': ['cordon'], 'events:detail-type': ['Cordon Case Failed'] };

    expect(await put(bus('default'), failed)).toBe('Allowed');
    expect(await put(bus('other'), failed)).not.toBe('Allowed');
    expect(await put(bus('default'), { ...failed, 'events:source': ['cordon', 'aws.guardduty'] })).not.toBe(
      'Allowed',
    );
    expect(await put(bus('default'), { ...failed, 'events:detail-type': ['Cordon Case Opened'] })).not.toBe(
      'Allowed',
    );
    expect(await put(bus('default'), {})).not.toBe('Allowed');
  });

  it('trusts, in each member role, exactly the functions functions/core/member-roles.ts lists for it', async () => {
    const home = homeModel(stackOf());
    const member = memberModel(home.names, 'dev');
    const functions = Object.keys(loadServerlessConfig().functions);
    const trusted: Record<string, string[]> = {};
    for (const role of member.model.roles().filter((r) => r.logicalId !== 'QuarantineRole')) {
      for (const fn of functions) {
        const verdict = await decide(
          functionPrincipal(home.model, fn, home.names),
          { action: 'sts:AssumeRole', resource: role.arn, context: { 'sts:RoleSessionName': 'cordon-case' } },
          localRegion,
          { logicalId: `${role.logicalId}(trust)`, policy: role.trustPolicy },
        );
        if (verdict.decision === 'Allowed')
          trusted[role.logicalId] = [...(trusted[role.logicalId] ?? []), fn];
      }
    }
    const expected = Object.fromEntries(
      Object.entries(memberCapabilities).map(([c, fns]) => [`${c}Role`, [...fns].sort()]),
    );
    expect(Object.fromEntries(Object.entries(trusted).map(([r, fns]) => [r, fns.sort()]))).toEqual(expected);
  });

  it('isolates, revokes, swaps the profile and requires IMDSv2 on an instance whose case tag the suspect removed', async () => {
    // The requests Isolate and Revoke made, decided again as if the suspect had stripped cordon:case-id
    // from its instance and its interfaces first (which its own role may be allowed to do), or as if
    // Protect, running beside them, had not tagged them yet.
    const containing = new Set([
      'ec2:ModifyNetworkInterfaceAttribute',
      'ec2:DisassociateAddress',
      'ec2:ReplaceIamInstanceProfileAssociation',
      'ec2:ModifyInstanceMetadataOptions',
    ]);
    const stripped = (r: RecordedRequest): RecordedRequest => ({
      ...r,
      facts: Object.fromEntries(
        Object.entries(r.facts).map(([id, seen]) => {
          const { 'cordon:case-id': _, ...tags } = seen.tags;
          return [id, { ...seen, tags }];
        }),
      ),
    });
    const refused: string[] = [];
    let decided = 0;
    for (const s of scenarios) {
      const requests = s.requests
        .filter(
          (r) =>
            containing.has(r.operation) && (r.fn === 'isolate-instance' || r.fn === 'revoke-credentials'),
        )
        .map(stripped);
      if (requests.length === 0) continue;
      const home = homeModel(s.stack);
      const rows = [
        ...(await decideRecorded(requests, home.model, home.names)),
        ...(await decideAsMember(requests, home, memberModel(home.names, 'dev'))),
      ].filter((row) => containing.has(row.action));
      decided += rows.length;
      refused.push(
        ...rows.filter((row) => row.verdict.decision !== 'Allowed').map((row) => formatRows([row])),
      );
    }
    expect(decided).toBeGreaterThan(0);
    expect(refused).toEqual([]);
  });

  it("still hands an interface no group but Cordon's, the instance no profile but the quarantine one, and never turns IMDSv1 back on", async () => {
    const home = homeModel(stackOf());
    const member = memberModel(home.names, 'dev');
    const account = member.names.account;
    const ec2 = (kind: string, id: string) => `arn:aws:ec2:${localRegion}:${account}:${kind}/${id}`;
    const verdicts: string[] = [];
    const contain = memberSession(member.model.role('ContainRole'), account);
    const revoke = memberSession(member.model.role('RevokeRole'), account);
    const asks: [Principal, string, string, Record<string, string>, string][] = [
      [
        contain,
        'ec2:ModifyNetworkInterfaceAttribute',
        ec2('security-group', 'sg-0attacker000000001'),
        {},
        'an account group',
      ],
      [
        contain,
        'ec2:ModifyInstanceAttribute',
        ec2('security-group', 'sg-0attacker000000001'),
        {},
        'an account group',
      ],
      [
        revoke,
        'ec2:ReplaceIamInstanceProfileAssociation',
        ec2('instance', 'i-0123456789abcdef0'),
        { 'ec2:NewInstanceProfile': `arn:aws:iam::${account}:instance-profile/admin` },
        'another profile',
      ],
      [
        revoke,
        'ec2:ModifyInstanceMetadataOptions',
        ec2('instance', 'i-0123456789abcdef0'),
        { 'ec2:Attribute/HttpTokens': 'optional' },
        'IMDSv1 allowed again',
      ],
    ];
    for (const [principal, action, resource, context, what] of asks) {
      const verdict = await decide(principal, { action, resource, context }, localRegion);
      if (verdict.decision === 'Allowed') verdicts.push(`${action} with ${what}`);
    }
    expect(verdicts).toEqual([]);
  });

  it("includes changing a Cordon or AWS role's inline policies, even for the roles that make room on an instance role", async () => {
    const home = homeModel(stackOf());
    const member = memberModel(home.names, 'dev');
    // Revoke and Release, in a member account and in the security account itself.
    const principals: [string, Principal, string][] = [
      ...['RevokeRole', 'ReleaseRole'].map((id): [string, Principal, string] => [
        `member ${id}`,
        memberSession(member.model.role(id), member.names.account),
        member.names.account,
      ]),
      ...['revoke-credentials', 'release-instance'].map((fn): [string, Principal, string] => [
        fn,
        functionPrincipal(home.model, fn, home.names),
        localAccountId,
      ]),
    ];
    const decisions: string[] = [];
    for (const [label, principal, account] of principals) {
      for (const [role, mayChange] of [
        ['app-role', true],
        ['CordonResponder-Read', false],
        ['cordon-dev-intake-finding', false],
        ['aws-service-role/ssm.amazonaws.com/AWSServiceRoleForAmazonSSM', false],
        ['aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123456789abcdef', false],
      ] as const) {
        // Putting (containment's deny, narrowed on release) and, to make room on a full role, removing
        // Cordon's spent denies: functions/core/denies.ts.
        for (const action of ['iam:PutRolePolicy', 'iam:DeleteRolePolicy']) {
          const verdict = await decide(
            principal,
            { action, resource: `arn:aws:iam::${account}:role/${role}`, context: {} },
            localRegion,
          );
          if ((verdict.decision === 'Allowed') !== mayChange)
            decisions.push(`${label} ${action} ${role}: ${verdict.decision}`);
        }
      }
      for (const action of ['iam:ListRolePolicies', 'iam:GetRolePolicy']) {
        const verdict = await decide(
          principal,
          { action, resource: `arn:aws:iam::${account}:role/app-role`, context: {} },
          localRegion,
        );
        if (verdict.decision !== 'Allowed') decisions.push(`${label} ${action}: ${verdict.decision}`);
      }
    }
    expect(decisions).toEqual([]);
  });

  it('includes writing IAM policy, for every function that reads text an attacker can shape', async () => {
    const home = homeModel(stackOf());
    const allowed = [];
    for (const fn of untrustedInputReaders) {
      const verdicts = await decideForbidden(
        functionPrincipal(home.model, fn, home.names),
        fn,
        iamWrites(localAccountId),
        home.model,
        localRegion,
      );
      allowed.push(
        ...verdicts.filter((v) => v.verdict.decision === 'Allowed').map((v) => `${fn} may ${v.what}`),
      );
    }
    expect(allowed).toEqual([]);
  });

  it("is Denied for the contained instance's own credentials after revocation, even under an allow-all role", async () => {
    if (!revocation) throw new Error('No case revoked a role: the revocation was not recorded');
    // Containment's deny and the one on sessions issued before it.
    expect(revocation.denyPolicies).toHaveLength(2);
    const home = homeModel(stackOf());
    const instanceArn = `arn:aws:ec2:${localRegion}:${localAccountId}:instance/${revocation.instanceId}`;
    const principal = revokedInstanceSession(revocation);
    const issuedBefore = new Date(Date.now() - 3_600_000).toISOString();
    const forbidden = [
      ...forbiddenRequests(home.names, stackOf().bucket, {
        evidence: stackOf().evidenceKeyArn,
        signing: stackOf().signingKeyId,
      }),
      ...iamWrites(localAccountId),
      {
        what: 'read the case evidence',
        auth: {
          action: 's3:GetObject',
          resource: `arn:aws:s3:::${stackOf().bucket}/cases/x/trigger.json`,
          context: {},
        },
      },
      {
        what: 'terminate the instance',
        auth: { action: 'ec2:TerminateInstances', resource: instanceArn, context: {} },
      },
    ].map((f) => ({
      ...f,
      auth: {
        ...f.auth,
        context: {
          ...f.auth.context,
          'ec2:SourceInstanceArn': instanceArn,
          'aws:TokenIssueTime': issuedBefore,
          'ec2:RoleDelivery': '2.0',
        },
      },
    }));
    const verdicts = await decideForbidden(principal, 'instance session', forbidden, home.model, localRegion);
    expect(verdicts.filter((v) => v.verdict.decision === 'Allowed').map((v) => v.what)).toEqual([]);
  });

  it("leaves the revoked session the SSM agent's channel on the host only, and nothing else", async () => {
    if (!revocation) throw new Error('No case revoked a role: the revocation was not recorded');
    const instanceArn = `arn:aws:ec2:${localRegion}:${localAccountId}:instance/${revocation.instanceId}`;
    const principal = revokedInstanceSession(revocation);
    const credentials = {
      'ec2:SourceInstanceArn': instanceArn,
      'aws:TokenIssueTime': new Date(Date.now() - 3_600_000).toISOString(),
      'aws:ec2InstanceSourceVPC': 'vpc-0123456789abcdef0',
      'aws:ec2InstanceSourcePrivateIPv4': '10.0.1.25',
    };
    const onTheHost = { 'aws:SourceVpc': 'vpc-0123456789abcdef0', 'aws:VpcSourceIp': '10.0.1.25' };
    const elsewhere = [
      ['from the internet', {}],
      ['through another VPC', { 'aws:SourceVpc': 'vpc-0fedcba9876543210', 'aws:VpcSourceIp': '10.0.1.25' }],
      [
        'from another address in the VPC',
        { 'aws:SourceVpc': 'vpc-0123456789abcdef0', 'aws:VpcSourceIp': '10.0.1.99' },
      ],
    ] as const;
    // Registration names the instance; the message channels take no resource.
    const resourceOf = (action: string) => (action === 'ssm:UpdateInstanceInformation' ? instanceArn : '*');
    const decideAgent = (action: string, where: object) =>
      decide(
        principal,
        { action, resource: resourceOf(action), context: { ...credentials, ...where } },
        localRegion,
      );

    for (const action of agentChannelActions) {
      expect((await decideAgent(action, onTheHost)).decision, `${action} on the host`).toBe('Allowed');
      for (const [what, where] of elsewhere) {
        expect((await decideAgent(action, where)).decision, `${action} ${what}`).toBe('ExplicitlyDenied');
      }
    }
    const others = [
      ['ssm:SendCommand', instanceArn],
      ['ssm:GetParameter', `arn:aws:ssm:${localRegion}:${localAccountId}:parameter/db-password`],
      ['s3:ListAllMyBuckets', '*'],
      ['ec2:DescribeInstances', '*'],
    ] as const;
    for (const [action, resource] of others) {
      const context = { ...credentials, ...onTheHost };
      const verdict = await decide(principal, { action, resource, context }, localRegion);
      expect(verdict.decision, `${action} on the host`).toBe('ExplicitlyDenied');
    }
  });

  it("gives the quarantine profile's role the agent's channel and nothing else", async () => {
    const home = homeModel(stackOf());
    const role = home.model.role('QuarantineRole');
    const principal: Principal = {
      roleArn: role.arn,
      sessionArn: `arn:aws:sts::${localAccountId}:assumed-role/${role.name}/i-0123456789abcdef0`,
      account: localAccountId,
      identityPolicies: role.identityPolicies,
    };
    const instanceArn = `arn:aws:ec2:${localRegion}:${localAccountId}:instance/i-0123456789abcdef0`;
    for (const action of agentChannelActions) {
      const resource = action === 'ssm:UpdateInstanceInformation' ? instanceArn : '*';
      const verdict = await decide(principal, { action, resource, context: {} }, localRegion);
      expect(verdict.decision, action).toBe('Allowed');
    }
    const others = [
      ['ssm:SendCommand', instanceArn],
      ['ec2:DescribeInstances', '*'],
      ['s3:GetObject', `arn:aws:s3:::${stackOf().bucket}/cases/x/trigger.json`],
      ['iam:PassRole', `arn:aws:iam::${localAccountId}:role/any-role`],
      ['sts:AssumeRole', `arn:aws:iam::${localAccountId}:role/any-role`],
    ] as const;
    for (const [action, resource] of others) {
      const verdict = await decide(principal, { action, resource, context: {} }, localRegion);
      expect(verdict.decision, action).not.toBe('Allowed');
    }
  });
});
