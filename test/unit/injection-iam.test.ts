/**
 * Injection, part 3: IAM policies and tags. Cordon builds every policy document with JSON.stringify
 * from validated identifiers and constants, and tags with its case id and constants only, so that no
 * finding, tag or name can add a statement, widen a resource, slip in a policy variable, or write a tag
 * AWS would refuse. Each document is parsed and compared whole with what was intended.
 */
import { AutoScalingClient, DescribeAutoScalingInstancesCommand } from '@aws-sdk/client-auto-scaling';
import {
  CreateSecurityGroupCommand,
  CreateSnapshotsCommand,
  CreateTagsCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  type Tag,
} from '@aws-sdk/client-ec2';
import { ElasticLoadBalancingClient } from '@aws-sdk/client-elastic-load-balancing';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import {
  GetInstanceProfileCommand,
  IAMClient,
  PutRolePolicyCommand,
  PutUserPolicyCommand,
} from '@aws-sdk/client-iam';
import {
  CreateMultipartUploadCommand,
  type GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { DescribeDocumentCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { type Case, caseIdPattern, caseSchema, partitionOf } from '../../functions/core/case.js';
import type { CredentialCase } from '../../functions/core/credentials.js';
import { denyPolicies, instanceArnOf } from '../../functions/core/denies.js';
import { quarantinePrincipal } from '../../functions/credentials/quarantine-principal/quarantine-principal.js';
import { revokeSessions } from '../../functions/credentials/revoke-sessions/revoke-sessions.js';
import { captureMemory } from '../../functions/forensics/capture-memory/capture-memory.js';
import { isolateInstance } from '../../functions/forensics/isolate-instance/isolate-instance.js';
import { protectInstance } from '../../functions/forensics/protect-instance/protect-instance.js';
import { revokeCredentials } from '../../functions/forensics/revoke-credentials/revoke-credentials.js';
import { snapshotVolumes } from '../../functions/forensics/snapshot-volumes/snapshot-volumes.js';
import {
  containCase,
  FakeEc2,
  instanceProfileAnswer,
  MemoryCases,
  picture,
  quarantineProfile,
} from '../support/containment-fixtures.js';
import { MemoryTimeline, sampleCase } from '../support/core-fakes.js';
import { evidenceConfig, fixedClock, triageFor } from '../support/evidence-fixtures.js';
import { hostile, payloads } from '../support/injection.js';
import { MemoryCases as CredentialCases, userCredentialCase } from '../support/playbooks-fixtures.js';

const ec2Mock = mockClient(EC2Client);
const iamMock = mockClient(IAMClient);
const eventsMock = mockClient(EventBridgeClient);
beforeEach(() => {
  eventsMock.reset();
  eventsMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
});
const asMock = mockClient(AutoScalingClient);
const ssmMock = mockClient(SSMClient);
const s3Mock = mockClient(S3Client);
const stsMock = mockClient(STSClient);
mockClient(ElasticLoadBalancingClient);
mockClient(ElasticLoadBalancingV2Client);

/** A case as the schema accepts it, for any instance, account and region AWS could name. */
const validCase: fc.Arbitrary<Case> = fc
  .record({
    caseId: fc.stringMatching(caseIdPattern),
    instanceId: fc.oneof(fc.stringMatching(/^i-[0-9a-f]{17}$/), fc.stringMatching(/^i-[0-9a-f]{8}$/)),
    accountId: fc.stringMatching(/^\d{12}$/),
    region: fc.constantFrom('us-east-1', 'eu-west-3', 'cn-north-1', 'us-gov-west-1', 'ap-southeast-4'),
  })
  .map((ids) => ({ ...sampleCase, ...ids, partition: partitionOf(ids.region) }));

/** Anything IAM's policy grammar would read as more than a literal: a wildcard or a policy variable. */
const wildcardOrVariable = /[*?]|\$\{/;

describe('the deny Revoke Credentials puts on the instance role', () => {
  it('is exactly the intended Deny statements, with only this instance and this instant in it', () => {
    fc.assert(
      fc.property(
        validCase,
        fc.constantFrom('instance', 'role') as fc.Arbitrary<'instance' | 'role'>,
        fc.date({ min: new Date('2020-01-01'), max: new Date('2040-01-01'), noInvalidDate: true }),
        (c, scope, when) => {
          expect(caseSchema.safeParse(c).success).toBe(true);
          const arn = instanceArnOf(c);
          const cutoff = when.toISOString();

          const documents = denyPolicies(scope, arn, cutoff);
          const document = {
            Version: '2012-10-17',
            Statement: [
              ...JSON.parse(documents.containment).Statement,
              ...JSON.parse(documents.issuedBefore).Statement,
            ],
          };

          // Every statement denies, and the only values in it are the instance's ARN and the cutoff
          // (the agent's channel and AWS's own policy variables are constants).
          expect(document.Version).toBe('2012-10-17');
          expect(document.Statement.every((st: { Effect: string }) => st.Effect === 'Deny')).toBe(true);
          const values = JSON.stringify(document.Statement.map((st: { Condition: unknown }) => st.Condition));
          const expectedArn = `arn:${c.partition}:ec2:${c.region}:${c.accountId}:instance/${c.instanceId}`;
          expect(
            values
              .replaceAll(expectedArn, '')
              .replaceAll(cutoff, '')
              // IAM policy variables, constants of the policy.
              .replace(/\$\{aws:ec2InstanceSource(VPC|PrivateIPv4)\}/g, ''),
          ).toMatch(/^[[\]{}":,A-Za-z0-9:.-]*$/);
          expect(document.Statement).toHaveLength(6);
          expect(values).toContain(JSON.stringify(expectedArn));
          expect(values).toContain(JSON.stringify(cutoff));
          expect(wildcardOrVariable.test(arn)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('is the document sent to IAM, on the role IAM named, whatever the finding said', async () => {
    ec2Mock.reset();
    iamMock.reset();
    FakeEc2.standard().install(ec2Mock);
    const cases = new MemoryCases();
    // Printable payloads only: the case refuses control, separator and format characters (a
    // bidirectional override among them) before any step reads it.
    const hostileText = hostile
      .filter(([name]) => !/NUL|ANSI|OSC|C1|line|header|bidirectional/.test(name))
      .map(([, p]) => p)
      .join(' ');
    const c = containCase({
      trigger: { ...sampleCase.trigger, reason: hostileText, findingType: hostileText },
    });
    expect(caseSchema.safeParse(c).success, 'printable payloads are valid free text').toBe(true);
    cases.add(c);
    iamMock.on(PutRolePolicyCommand).resolves({});
    iamMock.on(GetInstanceProfileCommand).resolves(instanceProfileAnswer());

    await revokeCredentials(
      { case: c },
      {
        ec2: new EC2Client({ region: 'us-east-1' }),
        iam: new IAMClient({ region: 'us-east-1' }),
        recorder: cases.recorder(c.caseId, 'revoke-credentials'),
        cases,
        config: { REVOKE_SCOPE: 'role', REQUIRE_IMDSV2: true, QUARANTINE_PROFILE_NAME: quarantineProfile },
        now: () => new Date('2026-11-27T20:16:00.000Z'),
      },
    );

    const calls = iamMock.commandCalls(PutRolePolicyCommand);
    expect(calls).toHaveLength(2);
    const documents = denyPolicies('role', instanceArnOf(c), '2026-11-27T20:16:00.000Z');
    const sent = calls.map((call) => call.args[0].input);
    expect(sent.map((i) => [i.RoleName, i.PolicyName])).toEqual([
      ['app-role', `cordon-revoke-${c.caseId}`],
      ['app-role', `cordon-revoke-${c.caseId}-issued-before`],
    ]);
    expect(sent.map((i) => JSON.parse(String(i.PolicyDocument)))).toEqual([
      JSON.parse(documents.containment),
      JSON.parse(documents.issuedBefore),
    ]);
    for (const i of sent) expect(String(i.PolicyDocument)).not.toContain('Allow');
  });
});

describe('the policies the credentials playbook puts on a principal', () => {
  const iamName = fc.stringMatching(/^[\w+=,.@-]{1,64}$/);

  beforeEach(() => {
    iamMock.reset();
    iamMock.on(PutUserPolicyCommand).resolves({});
    iamMock.on(PutRolePolicyCommand).resolves({});
  });

  async function contain(c: CredentialCase) {
    const cases = new CredentialCases();
    await cases.openSubject([], { caseId: c.caseId, openedAt: c.openedAt });
    const common = { iam: new IAMClient({}), cases };
    await quarantinePrincipal({ case: c }, { ...common, recorder: cases.recorder(c.caseId, 'quarantine') });
    await revokeSessions(
      { case: c },
      {
        ...common,
        recorder: cases.recorder(c.caseId, 'revoke'),
        memberRoleName: 'CordonResponder',
        now: () => new Date('2026-11-27T20:11:00.123Z'),
      },
    );
  }

  it('are exactly a deny-all and a deny of older sessions, whatever name IAM gave the user', async () => {
    await fc.assert(
      fc.asyncProperty(iamName, async (name) => {
        iamMock.resetHistory();
        const c = { ...userCredentialCase, principal: { ...userCredentialCase.principal, name } };

        await contain(c);

        const documents = iamMock.commandCalls(PutUserPolicyCommand).map((call) => {
          expect(call.args[0].input.UserName).toBe(name);
          return [call.args[0].input.PolicyName, JSON.parse(String(call.args[0].input.PolicyDocument))];
        });
        expect(documents).toEqual([
          [
            `cordon-quarantine-${c.caseId}`,
            {
              Version: '2012-10-17',
              Statement: [{ Sid: 'CordonQuarantine', Effect: 'Deny', Action: '*', Resource: '*' }],
            },
          ],
          [
            `cordon-revoke-${c.caseId}`,
            {
              Version: '2012-10-17',
              Statement: [
                {
                  Sid: 'CordonRevokeOlderSessions',
                  Effect: 'Deny',
                  Action: '*',
                  Resource: '*',
                  Condition: { DateLessThan: { 'aws:TokenIssueTime': '2026-11-27T20:11:00Z' } },
                },
              ],
            },
          ],
        ]);
      }),
      { numRuns: 50 },
    );
  });

  it('are never written for a principal name that carries a policy fragment or a variable', async () => {
    const { credentialStateSchema } = await import('../../functions/core/credentials.js');
    for (const payload of [
      payloads['a policy fragment'],
      payloads['a policy variable'],
      payloads['a double quote'],
    ]) {
      const c = {
        ...userCredentialCase,
        principal: { ...userCredentialCase.principal, name: `alice${payload}` },
      };

      expect(credentialStateSchema.safeParse({ case: c }).success).toBe(false);
    }
  });
});

describe('the session policy that narrows a memory upload', () => {
  beforeEach(() => {
    for (const m of [ssmMock, s3Mock, stsMock]) m.reset();
    ssmMock.on(DescribeDocumentCommand).resolves({ Document: { DocumentVersion: '3', Status: 'Active' } });
    ssmMock
      .on(SendCommandCommand)
      .resolves({ Command: { CommandId: '5c1f3a2e-8d9b-4c7a-9e6f-0a1b2c3d4e5f' } });
    s3Mock.on(HeadObjectCommand).resolves({ VersionId: 'v1' });
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    s3Mock.on(PutObjectCommand).resolves({});
    stsMock.on(AssumeRoleCommand).resolves({
      Credentials: {
        AccessKeyId: 'ASIAEXAMPLEEXAMPLE01',
        SecretAccessKey: 'EXAMPLE/secret+EXAMPLEsecretEXAMPLEsecre',
        SessionToken: 'EXAMPLEtokenEXAMPLEtokenEXAMPLEtoken==',
        Expiration: new Date('2026-11-27T21:30:00Z'),
      },
    });
  });

  it("allows writing this capture's two objects and nothing else, for any case", async () => {
    const presign = async (command: GetObjectCommand | PutObjectCommand) => {
      const input = command.input as { Bucket: string; Key: string };
      return `https://${input.Bucket}.s3.us-east-1.amazonaws.com/${input.Key}?X-Amz-Signature=abc`;
    };
    await fc.assert(
      fc.asyncProperty(fc.stringMatching(caseIdPattern), async (caseId) => {
        stsMock.resetHistory();
        const c = { ...sampleCase, caseId };

        await captureMemory(
          { case: c, triage: triageFor() },
          {
            ssm: new SSMClient({}),
            ec2: new EC2Client({}),
            s3: new S3Client({}),
            sts: new STSClient({}),
            presign,
            recorder: new MemoryTimeline().recorder(caseId, 'capture-memory'),
            config: evidenceConfig,
            now: fixedClock().now,
          },
        );

        const policy = JSON.parse(String(stsMock.commandCalls(AssumeRoleCommand)[0]?.args[0].input.Policy));
        const bucket = evidenceConfig.EVIDENCE_BUCKET;
        expect(policy).toEqual({
          Version: '2012-10-17',
          Statement: [
            {
              Sid: 'WriteThisCaptureOnly',
              Effect: 'Allow',
              Action: 's3:PutObject',
              Resource: [
                `arn:aws:s3:::${bucket}/cases/${caseId}/memory/image.lime`,
                `arn:aws:s3:::${bucket}/cases/${caseId}/memory/capture-report.json`,
              ],
            },
            {
              Sid: 'EncryptThroughS3',
              Effect: 'Allow',
              Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
              Resource: '*',
              Condition: { StringEquals: { 'kms:ViaService': 's3.us-east-1.amazonaws.com' } },
            },
          ],
        });
        for (const resource of policy.Statement[0].Resource as string[]) {
          expect(wildcardOrVariable.test(resource), resource).toBe(false);
        }
      }),
      { numRuns: 50 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------------------

/** AWS's rules for user tags: letters, digits, spaces and `_ . : / = + - @`; keys to 128, values to 256. */
const tagKey = /^(?!aws:)[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
const tagValue = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u;

/** Every tag a mocked EC2 was asked to write, by CreateTags or a TagSpecification. */
function tagsWritten(): Tag[] {
  const tags: Tag[] = [];
  for (const call of ec2Mock.calls()) {
    const input = call.args[0].input as { Tags?: Tag[]; TagSpecifications?: { Tags?: Tag[] }[] };
    if (call.args[0] instanceof CreateTagsCommand) tags.push(...(input.Tags ?? []));
    for (const spec of input.TagSpecifications ?? []) tags.push(...(spec.Tags ?? []));
  }
  return tags;
}

describe('the tags Cordon writes', () => {
  const hostileTags = Object.fromEntries(
    hostile.map(([name, payload], i) => [i % 2 ? `cordon:status` : `Name`, `${name}${payload}`]),
  );

  beforeEach(() => {
    ec2Mock.reset();
    asMock.reset();
    asMock.on(DescribeAutoScalingInstancesCommand).resolves({ AutoScalingInstances: [] });
  });

  it("hold the case id and Cordon's own words only, within AWS's tag rules, whatever the instance's own tags hold", async () => {
    const fake = FakeEc2.standard().install(ec2Mock);
    fake.instance.tags = { ...hostileTags, 'cordon:case-id': `old${payloads['a forged log line']}` };
    const c = containCase();
    const cases = new MemoryCases();
    cases.add(c);
    const now = () => new Date('2026-11-27T20:15:00Z');

    await protectInstance(
      { case: c, triage: picture() },
      {
        ec2: new EC2Client({}),
        autoscaling: new AutoScalingClient({}),
        elbv2: new ElasticLoadBalancingV2Client({}),
        elb: new ElasticLoadBalancingClient({}),
        recorder: cases.recorder(c.caseId, 'protect-instance'),
        cases,
        config: { ASG_MODE: 'standby' },
      },
    );
    await isolateInstance(
      { case: c, triage: picture() },
      {
        ec2: new EC2Client({}),
        recorder: cases.recorder(c.caseId, 'isolate-instance'),
        cases,
        config: {
          CORDON_STAGE: 'test',
          FORENSIC_CIDR: '',
          CONNTRACK_WAIT_SECONDS: 0,
          BLOCK_REMOTE_IPS: false,
          NACL_RULE_QUOTA: 20,
        },
        now,
        sleep: async () => undefined,
      },
    );

    const tags = tagsWritten();
    expect(ec2Mock.commandCalls(CreateTagsCommand).length).toBeGreaterThan(0);
    expect(ec2Mock.commandCalls(CreateSecurityGroupCommand).length).toBeGreaterThan(0);
    for (const { Key, Value } of tags) {
      expect(Key, String(Key)).toMatch(tagKey);
      expect(Value, `${Key}=${Value}`).toMatch(tagValue);
      expect(
        Value === c.caseId ||
          ['protected', 'isolated', 'true', 'isolation', 'conversion'].includes(String(Value)) ||
          Key === 'Name',
        `${Key}=${Value}`,
      ).toBe(true);
    }
    const names = tags.filter((t) => t.Key === 'Name').map((t) => String(t.Value));
    for (const name of names) expect(name).toMatch(/^cordon-test-[a-z0-9-]+$/);
  });

  it('on snapshots hold the case id and their purpose only, for any case', async () => {
    ec2Mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
    ec2Mock.on(CreateSnapshotsCommand).resolves({
      Snapshots: [
        { SnapshotId: 'snap-0aaaaaaaaaaaaaaa1', VolumeId: 'vol-0a1b2c3d4e5f60718', State: 'pending' },
      ],
    });
    await fc.assert(
      fc.asyncProperty(fc.stringMatching(caseIdPattern), async (caseId) => {
        ec2Mock.resetHistory();

        await snapshotVolumes(
          { case: { ...sampleCase, caseId }, triage: triageFor() },
          {
            ec2: new EC2Client({}),
            events: new EventBridgeClient({}),
            recorder: new MemoryTimeline().recorder(caseId, 'snapshot-volumes'),
            config: evidenceConfig,
            now: fixedClock().now,
          },
        );

        expect(tagsWritten()).toEqual([
          { Key: 'cordon:case-id', Value: caseId },
          { Key: 'cordon:purpose', Value: 'evidence' },
        ]);
        for (const { Value } of tagsWritten()) expect(Value).toMatch(tagValue);
      }),
      { numRuns: 50 },
    );
  });
});
