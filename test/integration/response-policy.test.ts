import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeIamInstanceProfileAssociationsCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { IAMClient, ListRolePoliciesCommand } from '@aws-sdk/client-iam';
import { DynamoDBDocumentClient, GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { PolicyResponse } from '../../functions/core/policy.js';
import { demoPolicy, humanReport } from '../../scripts/demo.js';
import type { LocalCase, LocalCaseOptions } from '../../scripts/local/case.js';
import { resetMoto } from '../../scripts/local/moto.js';
import { cordon, demoFinding, emulator, publishStack } from '../support/cli-fixtures.js';
import { readRealEvent } from '../support/fixtures.js';

const endpoint = inject('motoEndpoint');
const ec2 = new EC2Client(emulator(endpoint));
const iam = new IAMClient(emulator(endpoint));
const ddb = DynamoDBDocumentClient.from(new DynamoDBClient(emulator(endpoint)));

/** Each response once, through the demo's own path: its policy, its tag, its way of answering. */
const runs: Record<string, LocalCase> = {};

async function demoRun(response: PolicyResponse, approval?: LocalCaseOptions['approval']) {
  const { runLocalCase } = await import('../../scripts/local/case.js');
  const { policy, tags } = demoPolicy(response);
  return runLocalCase(readRealEvent(demoFinding), {
    endpoint,
    responsePolicy: policy,
    instanceTags: tags,
    ...(approval ? { approval } : {}),
  });
}

beforeAll(async () => {
  await resetMoto(endpoint);
  // One after another: a run configures the process as the functions' environment.
  runs.contain = await demoRun('contain');
  await publishStack(endpoint, runs.contain.stack);
  runs.evidenceOnly = await demoRun('evidence-only');
  runs.waiting = await demoRun('approve');
  runs.approved = await demoRun('approve', { decision: 'approved' });
  runs.rejected = await demoRun('approve', { decision: 'rejected', reason: 'payment window' });
  runs.exempt = await demoRun('exempt');
}, 180_000);

/** What containment would have changed on the seeded instance, read back from the emulated account. */
async function containmentState(run: LocalCase) {
  const { seeded } = run;
  const enis = await ec2.send(
    new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: seeded.networkInterfaceIds }),
  );
  const inline = await iam.send(new ListRolePoliciesCommand({ RoleName: seeded.roleName }));
  const profiles = await ec2.send(
    new DescribeIamInstanceProfileAssociationsCommand({
      Filters: [{ Name: 'instance-id', Values: [seeded.instanceId] }],
    }),
  );
  return {
    groups: (enis.NetworkInterfaces ?? []).map((n) => (n.Groups ?? []).map((g) => g.GroupId)),
    inlinePolicies: inline.PolicyNames ?? [],
    profiles: (profiles.IamInstanceProfileAssociations ?? [])
      .filter((a) => a.State === 'associated')
      .map((a) => a.IamInstanceProfile?.Arn?.split('/').pop()),
  };
}

/** The account as the demo seeded it: each ENI in its own group, no inline policy, its own profile. */
function asSeeded(run: LocalCase) {
  const { seeded } = run;
  return {
    groups: seeded.networkInterfaceIds.map(() => [seeded.securityGroupId]),
    inlinePolicies: [],
    profiles: [seeded.instanceProfileName],
  };
}

async function caseItem(caseId: string) {
  const out = await ddb.send(
    new GetCommand({ TableName: runs.contain?.stack.table, Key: { pk: `CASE#${caseId}`, sk: 'CASE' } }),
  );
  return out.Item;
}

describe('contain', () => {
  it('is contained as without a policy, the rule recorded', async () => {
    const run = runs.contain as LocalCase;

    expect(run.report.outcome, run.report.reason).toBe('completed');
    expect(run.report.response).toEqual({ action: 'contain', rule: 'demo-contain' });
    expect(run.report.contained).toBe(true);
    expect(await containmentState(run)).not.toEqual(asSeeded(run));
  });
});

describe('evidence-only', () => {
  it('completes sealed and verifiable, and says the instance was NOT contained', async () => {
    const run = runs.evidenceOnly as LocalCase;
    const caseId = run.report.caseId as string;

    const verified = await cordon(endpoint, ['evidence', 'verify', caseId]);

    expect(run.report.outcome, run.report.reason).toBe('completed');
    expect(run.report.response).toEqual({ action: 'evidence-only', rule: 'demo-evidence-only' });
    expect(run.report.contained).toBe(false);
    expect(run.report.evidence.map((e) => e.key.split('/').pop())).toEqual(
      expect.arrayContaining(['manifest.json', 'manifest.sig', 'image.lime']),
    );
    expect(verified.code, verified.stderr).toBe(0);
    expect(humanReport(run).join('\n')).toMatch(/the instance was NOT contained/);
  });

  it('leaves the ENIs in their groups, the role without a deny and the profile associated', async () => {
    const run = runs.evidenceOnly as LocalCase;

    expect(await containmentState(run)).toEqual(asSeeded(run));
  });
});

describe('approve, without an answer', () => {
  it('stops awaiting approval once its evidence is gathered, the account unchanged', async () => {
    const run = runs.waiting as LocalCase;

    expect(run.report.outcome).toBe('awaiting-approval');
    expect(run.report.response).toEqual({ action: 'approve', rule: 'demo-approve' });
    expect(run.report.steps.map((s) => s.name)).toContain('Verify Evidence Memory');
    expect(run.report.steps.map((s) => s.name)).not.toContain('Await Approval');
    expect((await caseItem(run.report.caseId as string))?.approval?.status).toBe('waiting');
    expect(await containmentState(run)).toEqual(asSeeded(run));
  });

  it('prints the commands that answer it', () => {
    const run = runs.waiting as LocalCase;

    const text = humanReport(run).join('\n');

    expect(text).toContain(`npx cordon approve ${run.report.caseId} --endpoint URL`);
    expect(text).toContain(`npx cordon reject ${run.report.caseId} --reason TEXT --endpoint URL`);
  });
});

describe('approve, approved', () => {
  it('is contained, and the case records who approved', async () => {
    const run = runs.approved as LocalCase;
    const item = await caseItem(run.report.caseId as string);

    expect(run.approval).toMatchObject({ answer: { decision: 'approved', goesOn: 'contain' } });
    expect(run.report.contained).toBe(true);
    expect(run.report.outcome).toBe('completed');
    expect(item?.approval).toMatchObject({
      status: 'approved',
      by: 'arn:aws:sts::123456789012:user/moto',
    });
    const state = await containmentState(run);
    expect(state.groups).not.toEqual(asSeeded(run).groups);
    expect(state.inlinePolicies).not.toEqual([]);
  });

  it('refuses a second approval of the same case, by name', async () => {
    const caseId = (runs.approved as LocalCase).report.caseId as string;

    const again = await cordon(endpoint, ['approve', caseId]);

    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already approved by arn:aws:sts::123456789012:user\/moto/);
  });
});

describe('approve, rejected', () => {
  it('ends evidence only, not contained, with the reason recorded', async () => {
    const run = runs.rejected as LocalCase;
    const item = await caseItem(run.report.caseId as string);

    expect(run.report.outcome, run.report.reason).toBe('completed');
    expect(run.report.contained).toBe(false);
    expect(run.report.approval).toMatchObject({ decision: 'rejected', goesOn: 'evidence-only' });
    expect(item?.approval).toMatchObject({ status: 'rejected', reason: 'payment window' });
    expect(await containmentState(run)).toEqual(asSeeded(run));
  });
});

describe('exempt', () => {
  it('is rejected naming the rule and notified, opens no case and changes nothing', async () => {
    const run = runs.exempt as LocalCase;

    const cases = await ddb.send(new ScanCommand({ TableName: run.stack.table }));
    const snapshots = await ec2.send(
      new DescribeSnapshotsCommand({ Filters: [{ Name: 'volume-id', Values: run.seeded.volumeIds }] }),
    );

    expect(run.report.outcome).toBe('rejected');
    expect(run.report.reason).toMatch(/^EXEMPT: .*rule "demo-exempt"/);
    expect(run.report.caseId).toBeNull();
    // Refused, and said: the only step after Intake is the notification.
    expect(run.report.steps.map((s) => s.name)).toEqual(['Intake Finding', 'Notify Outcome']);
    expect(run.notification?.subject).toBe('[Cordon] EXEMPT: a finding was not actioned, by response policy');
    expect(run.notification?.body).toContain('rule "demo-exempt"');
    expect((cases.Items ?? []).filter((i) => JSON.stringify(i).includes(run.seeded.instanceId))).toEqual([]);
    expect(
      (snapshots.Snapshots ?? []).filter((s) => s.Tags?.some((t) => t.Key?.startsWith('cordon'))),
    ).toEqual([]);
    expect(await containmentState(run)).toEqual(asSeeded(run));
  });
});
