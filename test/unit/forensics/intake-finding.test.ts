import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { BatchUpdateFindingsCommand } from '@aws-sdk/client-securityhub';
import { GetCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Case, caseSchema, safeTextSchema } from '../../../functions/core/case.js';
import {
  intakeFinding,
  intakeInputSchema,
} from '../../../functions/forensics/intake-finding/intake-finding.js';
import {
  type IntakeConfig,
  maxTriggerBytes,
  normaliseTrigger,
} from '../../../functions/forensics/intake-finding/normalise.js';
import type { RefusalCode } from '../../../functions/forensics/intake-finding/values.js';
import {
  answerEverything,
  assessmentOf,
  bucket,
  callsSent,
  ddbMock,
  devConfig,
  eventsMock,
  executionArn,
  expectedOpenTransaction,
  expectedTriggerPut,
  homeAccountId,
  homeRegion,
  intakeDeps,
  now,
  productionConfig,
  readRealEvent,
  realEventFiles,
  s3Mock,
  securityHubMock,
  settingsOf,
  table,
  timelineItems,
  withAccount,
} from '../../support/intake-fixtures.js';

const files = {
  apiBackdoor: 'gd_api_getfindings_backdoor_cc_activity_b_dns_count3.json',
  apiTrojan: 'gd_api_getfindings_trojan_drivebysourcetraffic_dns_count3.json',
  asffDocs: 'gd_asff_sshbruteforce_real_count74_from_docs.json',
  accessKey: 'gd_detail_REJECT_accesskey_recon_maliciousipcaller_custom_sample_archived.json',
  s3Bucket: 'gd_detail_REJECT_s3bucket_pentest_parrotlinux_sample_archived.json',
  canary: 'gd_detail_canary_ec2_stateless_integtest.json',
  partial: 'gd_eb_partial_sshbruteforce_sample.json',
  foreignAction: 'sh_eb_custom_action_REJECT_cloudtrail_1_mismatch.json',
  customAction: 'sh_eb_custom_action_ec2_instance_afsbp_ec2_8.json',
  importedAccount: 'sh_eb_imported_REJECT_afsbp_ec2_7_awsaccount_resource.json',
} as const;

/** The account the API fixtures are given in place of their redacted `id`, as the demo maps it. */
const mappedAccount = '444455556666';

type Expected = { refused: RefusalCode } | { opens: Omit<Case, 'caseId' | 'executionArn'> };

const at = now.toISOString();
const realEventOutcomes: Record<string, Expected> = {
  // The API fixtures run as a mapped copy (`withAccount`, the real account given in place of `id`).
  [files.apiBackdoor]: {
    opens: {
      instanceId: 'i-99999999',
      accountId: mappedAccount,
      region: 'us-east-2',
      partition: 'aws',
      openedAt: at,
      trigger: {
        source: 'guardduty',
        shape: 'guardduty-api',
        findingId: '14bd952561ab40e0b9275f648fcca0f2',
        findingType: 'Backdoor:EC2/C&CActivity.B!DNS',
        severity: 8,
        count: 3,
        sample: false,
        remoteIps: [],
        requestedBy: 'operator',
        reason: 'Command and Control server domain name queried by EC2 instance i-99999999.',
        receivedAt: at,
      },
      response: { action: 'contain', rule: 'default' },
    },
  },
  [files.apiTrojan]: {
    opens: {
      instanceId: 'i-99999999',
      accountId: mappedAccount,
      region: 'us-east-2',
      partition: 'aws',
      openedAt: at,
      trigger: {
        source: 'guardduty',
        shape: 'guardduty-api',
        findingId: '0ebd952561ab229930385cfe43860cbf',
        findingType: 'Trojan:EC2/DriveBySourceTraffic!DNS',
        severity: 8,
        count: 3,
        sample: false,
        remoteIps: [],
        requestedBy: 'operator',
        reason: 'Drive-by source domain name queried by EC2 instance i-99999999.',
        receivedAt: at,
      },
      response: { action: 'contain', rule: 'default' },
    },
  },
  [files.asffDocs]: {
    opens: {
      instanceId: 'i-0c10c2c7863d1a356',
      accountId: '193043430472',
      region: 'us-east-1',
      partition: 'aws',
      openedAt: at,
      trigger: {
        source: 'securityhub',
        shape: 'asff',
        findingId:
          'arn:aws::guardduty:us-east-1:193043430472:detector/d4b040365221be2b54a6264dc9a4bc64/finding/46ba0ac2845071e23ccdeb2ae03bfdea',
        findingType: 'TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce',
        severity: 2,
        count: 74,
        sample: false,
        remoteIps: ['199.241.229.197'],
        requestedBy: 'operator',
        reason: '199.241.229.197 is performing SSH brute force attacks against i-0c10c2c7863d1a356.',
        receivedAt: at,
      },
      response: { action: 'contain', rule: 'default' },
    },
  },
  [files.accessKey]: { refused: 'RESOURCE_NOT_INSTANCE' },
  [files.s3Bucket]: { refused: 'RESOURCE_NOT_INSTANCE' },
  [files.canary]: {
    opens: {
      instanceId: 'i-05746eb48123455e0',
      accountId: '123456789012',
      region: 'us-east-1',
      partition: 'aws',
      openedAt: at,
      trigger: {
        source: 'guardduty',
        shape: 'guardduty-detail',
        findingId: '16afba5c5c43e07c9e3e5e2e544e95df',
        findingType: 'Canary:EC2/Stateless.IntegTest',
        severity: 5,
        count: 1,
        sample: false,
        // The finding's only remote address is 0.0.0.0, which names nobody.
        remoteIps: [],
        requestedBy: 'operator',
        reason: 'Canary:EC2/Stateless.IntegTest',
        receivedAt: at,
      },
      response: { action: 'contain', rule: 'default' },
      // The finding as GuardDuty's integration imports it into Security Hub: its ARN is the Id.
      securityHub: {
        id: 'arn:aws:guardduty:us-east-1:123456789012:detector/123456789012/finding/16afba5c5c43e07c9e3e5e2e544e95df',
        productArn: 'arn:aws:securityhub:us-east-1::product/aws/guardduty',
      },
    },
  },
  [files.partial]: {
    opens: {
      instanceId: 'i-99999999',
      // The partial envelope names no account: the instance is taken to be in Cordon's own.
      accountId: homeAccountId,
      region: 'us-east-1',
      partition: 'aws',
      openedAt: at,
      trigger: {
        source: 'guardduty',
        shape: 'eventbridge-guardduty',
        findingId: '02be5693b63eea1d67e6f321c6aee4f3',
        findingType: 'UnauthorizedAccess:EC2/SSHBruteForce',
        severity: 2,
        count: 1,
        sample: true,
        remoteIps: ['198.51.100.0'],
        requestedBy: 'guardduty',
        reason: '198.51.100.0 is performing SSH brute force attacks against i-99999999.',
        receivedAt: at,
      },
      response: { action: 'contain', rule: 'default' },
    },
  },
  [files.foreignAction]: { refused: 'FOREIGN_CUSTOM_ACTION' },
  [files.customAction]: {
    opens: {
      instanceId: 'i-0bf2bf6b175654c6e',
      accountId: '123456789012',
      region: 'ap-southeast-2',
      partition: 'aws',
      openedAt: at,
      trigger: {
        source: 'securityhub',
        shape: 'securityhub-custom-action',
        findingId:
          'arn:aws:securityhub:ap-southeast-2:123456789012:subscription/aws-foundational-security-best-practices/v/1.0.0/EC2.8/finding/482e8524-4f22-4a27-9dba-b8a582f24529',
        findingType:
          'Software and Configuration Checks/Industry and Regulatory Standards/AWS-Foundational-Security-Best-Practices',
        severity: 7,
        sample: false,
        remoteIps: [],
        requestedBy: 'securityhub:ForensicTriageAction',
        reason: 'EC2.8 EC2 instances should use Instance Metadata Service Version 2 (IMDSv2)',
        receivedAt: at,
      },
      response: { action: 'contain', rule: 'default' },
      securityHub: {
        id: 'arn:aws:securityhub:ap-southeast-2:123456789012:subscription/aws-foundational-security-best-practices/v/1.0.0/EC2.8/finding/482e8524-4f22-4a27-9dba-b8a582f24529',
        productArn: 'arn:aws:securityhub:ap-southeast-2::product/aws/securityhub',
      },
    },
  },
  // Refused for what it is about even though imported findings are also turned off in this setting.
  [files.importedAccount]: { refused: 'RESOURCE_NOT_INSTANCE' },
};

const apiFixtures = new Set<string>([files.apiBackdoor, files.apiTrojan]);

/** The event as a test hands it to Intake: as on disk, except the API fixtures' redacted account. */
function asReceived(file: string): Record<string, unknown> {
  const event = readRealEvent(file);
  return apiFixtures.has(file) ? withAccount(event, mappedAccount) : event;
}

function decide(event: unknown, config: IntakeConfig = devConfig) {
  return normaliseTrigger(event, settingsOf(config), now);
}

function refusalCode(result: ReturnType<typeof decide>): string | undefined {
  return 'rejected' in result ? result.rejected.split(':')[0] : undefined;
}

function intake(event: unknown, config: IntakeConfig = devConfig) {
  return intakeFinding({ event, executionArn }, intakeDeps(config));
}

function withPath(
  value: Record<string, unknown>,
  path: string[],
  replacement: unknown,
): Record<string, unknown> {
  const copy = structuredClone(value);
  let node: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
  const last = path.at(-1) as string;
  if (replacement === undefined) delete node[last];
  else node[last] = replacement;
  return copy;
}

const canaryDetail = () => readRealEvent(files.canary);
const asffFinding = () => readRealEvent(files.asffDocs);

/** A full EventBridge envelope around a GuardDuty finding, as the GuardDuty rule delivers it. */
function guardDutyEvent(detail: unknown): Record<string, unknown> {
  return {
    version: '0',
    id: 'c8d7e6f5-0000-4000-8000-000000000001',
    'detail-type': 'GuardDuty Finding',
    source: 'aws.guardduty',
    account: '123456789012',
    time: '2026-11-27T20:10:00Z',
    region: 'us-east-1',
    resources: [],
    detail,
  };
}

/** The imported-findings fixture's envelope carrying other findings. */
function importedEvent(...findings: unknown[]): Record<string, unknown> {
  const envelope = readRealEvent(files.importedAccount);
  return { ...envelope, detail: { findings } };
}

beforeEach(() => {
  answerEverything();
});

describe('the real events in ../shared/fixtures/real-events', () => {
  const onDisk = realEventFiles();

  it('has an expected outcome for every event on disk', () => {
    expect(onDisk).toEqual(Object.keys(realEventOutcomes).sort());
  });

  const refused = onDisk.filter((f) => 'refused' in (realEventOutcomes[f] ?? {}));
  const opened = onDisk.filter((f) => 'opens' in (realEventOutcomes[f] ?? {}));

  it.each(refused)('refuses %s with its code and sends no AWS call', async (file) => {
    const expected = realEventOutcomes[file] as { refused: RefusalCode };

    const result = await intake(asReceived(file));

    expect(result).toEqual({
      intake: { decision: 'rejected', reason: expect.stringMatching(new RegExp(`^${expected.refused}: `)) },
    });
    expect(callsSent()).toBe(0);
  });

  it.each(opened)(
    'opens a case for %s with one conditional transaction and a locked trigger.json',
    async (file) => {
      const expected = realEventOutcomes[file] as { opens: Omit<Case, 'caseId' | 'executionArn'> };
      const event = asReceived(file);

      const result = await intake(event);

      const c = result.case as Case;
      expect(c).toEqual({ ...expected.opens, caseId: expect.any(String), executionArn });
      expect(c.caseId).toMatch(new RegExp(`^20261127T201003Z-${expected.opens.instanceId}-[0-9a-f]{4}$`));
      expect(result.intake).toEqual({
        decision: 'accepted',
        reason: expect.stringMatching(/^ACCEPTED: /),
        caseId: c.caseId,
      });
      expect(ddbMock).toHaveReceivedCommandTimes(TransactWriteCommand, 1);
      expect(ddbMock.commandCalls(TransactWriteCommand)[0]?.args[0].input).toEqual(
        expectedOpenTransaction(c),
      );
      expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
      expect(s3Mock.commandCalls(PutObjectCommand)[0]?.args[0].input).toEqual(
        expectedTriggerPut(c.caseId, event),
      );
    },
  );

  it('refuses the API fixtures as published, their account redacted to "id", as MALFORMED', () => {
    const results = [files.apiBackdoor, files.apiTrojan].map((f) => decide(readRealEvent(f)));

    expect(results).toEqual([
      { rejected: 'MALFORMED: the account id is not 12 digits' },
      { rejected: 'MALFORMED: the account id is not 12 digits' },
    ]);
  });

  it('records the opening on the new case timeline with what the trigger said', async () => {
    const result = await intake(asReceived(files.partial));

    const caseId = result.intake.caseId as string;
    expect(timelineItems()).toContainEqual({
      pk: `CASE#${caseId}`,
      sk: expect.stringMatching(/^T#2026-11-27T20:10:03\.123Z#\d{3}[0-9a-f]{8}$/),
      step: 'intake-finding',
      action: 'case opened',
      status: 'info',
      target: 'i-99999999',
      detail:
        'eventbridge-guardduty from guardduty; severity 2; count 1; sample finding; 1 remote IP(s); type UnauthorizedAccess:EC2/SSHBruteForce; finding 02be5693b63eea1d67e6f321c6aee4f3',
      at,
    });
  });
});

describe('the opened event', () => {
  it('hands containment the first look at the instance, and records the plan it chose', async () => {
    const result = await intake(asReceived(files.partial));

    expect(result.assessment).toEqual(assessmentOf('i-99999999'));
    expect(timelineItems()).toContainEqual(
      expect.objectContaining({
        action: 'plan chosen',
        status: 'info',
        detail: expect.stringMatching(/^contain-first, memory capture: /),
      }),
    );
  });

  it('opens the case all the same when the instance cannot be read, leaving the plan to Triage', async () => {
    const deps = intakeDeps();
    const refused = Object.assign(new Error('not authorized'), { name: 'AssumeRoleError' });
    const result = await intakeFinding(
      { event: asReceived(files.partial), executionArn },
      { ...deps, assess: async () => Promise.reject(refused) },
    );

    expect(result.intake.decision).toBe('accepted');
    expect(result.assessment).toBeUndefined();
    expect(timelineItems()).toContainEqual(
      expect.objectContaining({
        action: 'first look at the instance',
        status: 'skipped',
        detail: expect.stringContaining('the plan is left to Triage'),
      }),
    );
  });

  it('says on the bus that a case it opened and had to abandon has failed', async () => {
    s3Mock
      .on(PutObjectCommand)
      .rejects(
        Object.assign(new Error('denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }),
      );

    await expect(intake(asReceived(files.partial))).rejects.toThrow(/closed as failed/);

    const types = eventsMock
      .commandCalls(PutEventsCommand)
      .flatMap((c) => c.args[0].input.Entries ?? [])
      .map((e) => e.DetailType);
    expect(types).toEqual(['Cordon Case Opened', 'Cordon Case Failed']);
  });

  it('says on the default bus that the case is open, beside storing the trigger', async () => {
    const result = await intake(asReceived(files.partial));

    const entries = eventsMock.commandCalls(PutEventsCommand).flatMap((c) => c.args[0].input.Entries ?? []);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ Source: 'cordon', DetailType: 'Cordon Case Opened' });
    expect(JSON.parse(entries[0]?.Detail ?? '{}')).toMatchObject({
      transition: 'opened',
      caseId: result.intake.caseId,
      instanceId: 'i-99999999',
    });
  });

  it('opens the case all the same when the event is refused, and records that it was not sent', async () => {
    eventsMock.on(PutEventsCommand).rejects(
      Object.assign(new Error('not authorized'), {
        name: 'AccessDeniedException',
        $metadata: { httpStatusCode: 400 },
      }),
    );

    const result = await intake(asReceived(files.partial));

    expect(result.intake.decision).toBe('accepted');
    expect(timelineItems()).toContainEqual(
      expect.objectContaining({ action: 'events:PutEvents', status: 'failed' }),
    );
  });

  it('sends no event for a trigger it refuses', async () => {
    await intake({ detail: 'nothing' });

    expect(eventsMock.calls()).toHaveLength(0);
  });
});

describe('the finding in Security Hub', () => {
  const customAction = () => asReceived(files.customAction);
  const customActionId =
    'arn:aws:securityhub:ap-southeast-2:123456789012:subscription/aws-foundational-security-best-practices/v/1.0.0/EC2.8/finding/482e8524-4f22-4a27-9dba-b8a582f24529';
  const shTimeline = () =>
    timelineItems().filter((item) => item.action === 'securityhub:BatchUpdateFindings');

  it('is marked NOTIFIED, with the case id in a note and in cordonCaseId, in the region that holds it', async () => {
    const regions: string[] = [];
    const deps = intakeDeps();
    const client = deps.securityHub?.client;
    if (!client) throw new Error('intakeDeps has no Security Hub');

    const result = await intakeFinding(
      { event: customAction(), executionArn },
      {
        ...deps,
        securityHub: {
          client: (region) => {
            regions.push(region);
            return client(region);
          },
          updatedBy: 'cordon-test',
        },
      },
    );

    const caseId = result.intake.caseId as string;
    expect(regions).toEqual(['ap-southeast-2']);
    expect(securityHubMock).toHaveReceivedCommandTimes(BatchUpdateFindingsCommand, 1);
    expect(securityHubMock.commandCalls(BatchUpdateFindingsCommand)[0]?.args[0].input).toEqual({
      FindingIdentifiers: [
        { Id: customActionId, ProductArn: 'arn:aws:securityhub:ap-southeast-2::product/aws/securityhub' },
      ],
      Workflow: { Status: 'NOTIFIED' },
      Note: {
        Text: `Cordon case ${caseId} opened on this finding: containment and evidence collection under way. Details: cordon status ${caseId}`,
        UpdatedBy: 'cordon-test',
      },
      UserDefinedFields: { cordonCaseId: caseId },
    });
    expect(shTimeline()).toEqual([
      expect.objectContaining({
        pk: `CASE#${caseId}`,
        step: 'intake-finding',
        status: 'ok',
        target: customActionId,
      }),
    ]);
  });

  it('is marked only once the trigger is stored, so that a case Intake abandons marks nothing', async () => {
    const order: string[] = [];
    s3Mock.on(PutObjectCommand).callsFake(async () => {
      order.push('trigger stored');
      return { VersionId: 'v1', $metadata: { requestId: 's3-put-1' } };
    });
    securityHubMock.on(BatchUpdateFindingsCommand).callsFake(async () => {
      order.push('finding marked');
      return { UnprocessedFindings: [] };
    });

    const result = await intake(customAction());

    expect(result.intake.decision).toBe('accepted');
    expect(order).toEqual(['trigger stored', 'finding marked']);
  });

  it.each([
    [
      'denied',
      Object.assign(new Error('not authorized'), {
        name: 'AccessDeniedException',
        $metadata: { httpStatusCode: 403 },
      }),
      'failed',
    ],
    [
      'not enabled',
      Object.assign(new Error('not subscribed'), {
        name: 'InvalidAccessException',
        $metadata: { httpStatusCode: 401 },
      }),
      'skipped',
    ],
  ])('opens the case all the same when Security Hub is %s, and records it', async (_what, error, status) => {
    securityHubMock.on(BatchUpdateFindingsCommand).rejects(error);

    const result = await intake(customAction());

    expect(result.intake.decision).toBe('accepted');
    expect(result.case?.securityHub?.id).toBe(customActionId);
    expect(s3Mock).toHaveReceivedCommandTimes(PutObjectCommand, 1);
    expect(shTimeline()).toEqual([
      expect.objectContaining({ status, detail: expect.stringContaining(error.name) }),
    ]);
  });

  it('opens the case all the same when Security Hub leaves the finding unprocessed', async () => {
    securityHubMock.on(BatchUpdateFindingsCommand).resolves({
      UnprocessedFindings: [
        {
          FindingIdentifier: {
            Id: customActionId,
            ProductArn: 'arn:aws:securityhub:ap-southeast-2::product/aws/securityhub',
          },
          ErrorCode: 'FindingNotFound',
          ErrorMessage: 'Finding Not Found',
        },
      ],
    });

    const result = await intake(customAction());

    expect(result.intake.decision).toBe('accepted');
    expect(shTimeline()).toEqual([
      expect.objectContaining({
        status: 'failed',
        detail: expect.stringMatching(/^unprocessed: .*FindingNotFound/),
      }),
    ]);
  });

  it('makes no call for a trigger that is not in Security Hub', async () => {
    const result = await intake(asReceived(files.partial));

    expect(result.intake.decision).toBe('accepted');
    expect(result.case && 'securityHub' in result.case).toBe(false);
    expect(securityHubMock.calls()).toHaveLength(0);
  });

  it('marks nothing when Intake cannot finish the case', async () => {
    s3Mock.on(PutObjectCommand).rejects(
      Object.assign(new Error('not authorized'), {
        name: 'AccessDenied',
        $metadata: { httpStatusCode: 403 },
      }),
    );
    ddbMock.on(UpdateCommand).resolves({});

    await intake(customAction()).catch(() => undefined);

    expect(securityHubMock.calls()).toHaveLength(0);
  });
});

describe('refusals', () => {
  it('refuses an event over 256 KB as TOO_LARGE without reading it', async () => {
    const event = { ...canaryDetail(), padding: 'x'.repeat(maxTriggerBytes) };

    const result = await intake(event);

    expect(result.intake.reason).toMatch(/^TOO_LARGE: /);
    expect(callsSent()).toBe(0);
  });

  it.each([
    ['a JSON array', []],
    ['a string', 'i-0123456789abcdef0'],
    ['null', null],
    ['no event at all', undefined],
  ])('refuses %s as MALFORMED', (_what, event) => {
    expect(refusalCode(decide(event))).toBe('MALFORMED');
  });

  it('refuses an object of no known shape as MALFORMED', () => {
    expect(decide({ hello: 'world' })).toEqual({
      rejected: 'MALFORMED: the trigger is none of the shapes Cordon accepts',
    });
  });

  it('refuses a GuardDuty event whose detail holds a findings array as MALFORMED', () => {
    const event = guardDutyEvent({ findings: [canaryDetail()] });

    expect(decide(event)).toEqual({
      rejected: 'MALFORMED: a GuardDuty event carries one finding in its detail, never a findings array',
    });
  });

  it('refuses an instance finding without instance details as MALFORMED', () => {
    const event = withPath(canaryDetail(), ['resource', 'instanceDetails'], undefined);

    expect(decide(event)).toEqual({ rejected: 'MALFORMED: the finding names no instance' });
  });

  it('refuses a severity given as text as MALFORMED', () => {
    const event = withPath(canaryDetail(), ['severity'], 'HIGH');

    expect(decide(event)).toEqual({ rejected: 'MALFORMED: the severity is not a number from 0 to 10' });
  });

  it.each([
    ['not hex', 'i-zzzzzzzz'],
    ['9 hex digits', 'i-0123456789'],
    ['upper-case hex', 'i-0123456789ABCDEF0'],
    ['a trailing newline', 'i-05746eb48123455e0\n'],
  ])('refuses an instance id that is %s as MALFORMED', (_what, instanceId) => {
    const event = withPath(canaryDetail(), ['resource', 'instanceDetails', 'instanceId'], instanceId);

    expect(decide(event)).toEqual({
      rejected: 'MALFORMED: the instance id is not i- followed by 8 or 17 hex digits',
    });
  });

  it('refuses an account id that is not 12 digits as MALFORMED', () => {
    const event = withPath(canaryDetail(), ['accountId'], '12345678901');

    expect(decide(event)).toEqual({ rejected: 'MALFORMED: the account id is not 12 digits' });
  });

  it('refuses a region that is not a region as MALFORMED', () => {
    const event = withPath(canaryDetail(), ['region'], 'us-east-1; rm -rf /');

    expect(decide(event)).toEqual({ rejected: 'MALFORMED: the region is not an AWS region' });
  });

  it('refuses an ASFF instance resource whose id is not an instance ARN as MALFORMED', () => {
    const finding = asffFinding();
    const event = withPath(finding, ['Resources'], [{ Type: 'AwsEc2Instance', Id: 'i-0c10c2c7863d1a356' }]);

    expect(decide(event)).toEqual({
      rejected: 'MALFORMED: the AwsEc2Instance resource id is not an instance ARN',
    });
  });

  it('refuses an EventBridge event from another source as UNSUPPORTED_TRIGGER', () => {
    const event = {
      ...guardDutyEvent(canaryDetail()),
      source: 'aws.ec2',
      'detail-type': 'EC2 Instance State-change Notification',
    };

    expect(refusalCode(decide(event))).toBe('UNSUPPORTED_TRIGGER');
  });

  it('refuses an access-key finding as RESOURCE_NOT_INSTANCE although it carries instance details', () => {
    const event = withPath(readRealEvent(files.accessKey), ['service', 'archived'], false);

    expect(decide(event)).toEqual({
      rejected:
        'RESOURCE_NOT_INSTANCE: the finding is about a resource of type AccessKey, not an EC2 instance',
    });
  });

  it('does not quote a resource type that could carry a payload', () => {
    const event = withPath(canaryDetail(), ['resource', 'resourceType'], 'Access\nKey <script>');

    expect(decide(event)).toEqual({
      rejected: 'RESOURCE_NOT_INSTANCE: the finding is not about an EC2 instance',
    });
  });

  it('refuses an ASFF finding about an account as RESOURCE_NOT_INSTANCE', () => {
    const finding = withPath(
      asffFinding(),
      ['Resources'],
      [{ Type: 'AwsAccount', Id: 'AWS::::Account:193043430472' }],
    );

    expect(decide(finding)).toEqual({
      rejected:
        'RESOURCE_NOT_INSTANCE: the finding is about a resource of type AwsAccount, not an EC2 instance',
    });
  });

  it('refuses one ASFF finding that names two different instances as MULTIPLE_INSTANCES', () => {
    const finding = asffFinding();
    const [resource] = finding.Resources as Record<string, unknown>[];
    const other = { ...resource, Id: 'arn:aws:ec2:us-east-1:193043430472:instance/i-0aaaaaaaaaaaaaaaa' };
    const event = withPath(finding, ['Resources'], [resource, other]);

    expect(refusalCode(decide(event))).toBe('MULTIPLE_INSTANCES');
  });

  it('refuses an ASFF finding whose instance is in another account than the finding is from, as ACCOUNT_MISMATCH', () => {
    const finding = asffFinding();
    const [resource] = finding.Resources as Record<string, unknown>[];
    const elsewhere = { ...resource, Id: 'arn:aws:ec2:us-east-1:444455556666:instance/i-0c10c2c7863d1a356' };
    const event = withPath(finding, ['Resources'], [elsewhere]);

    expect(decide(event)).toEqual({
      rejected: 'ACCOUNT_MISMATCH: the instance belongs to another account than the one the finding is from',
    });
  });

  it('acts on an ASFF finding whose instance ARN names the account the finding is from', () => {
    expect(refusalCode(decide(asffFinding()))).toBeUndefined();
  });

  it('refuses a list holding two instance findings as MULTIPLE_FINDINGS', () => {
    const event = {
      Findings: [
        withAccount(readRealEvent(files.apiBackdoor), mappedAccount),
        withAccount(readRealEvent(files.apiTrojan), mappedAccount),
      ],
    };

    expect(decide(event)).toEqual({
      rejected:
        'MULTIPLE_FINDINGS: the input holds 2 instance findings; hand them to Cordon one at a time (one case per instance)',
    });
  });

  it('accepts a list holding one instance finding among findings about other resources', () => {
    const accessKeyFinding = withPath(
      asffFinding(),
      ['Resources'],
      [{ Type: 'AwsIamAccessKey', Id: 'AKIAEXAMPLE' }],
    );
    const event = { Findings: [accessKeyFinding, asffFinding()] };

    const result = decide(event);

    expect('ok' in result && result.ok.instanceId).toBe('i-0c10c2c7863d1a356');
  });

  it('refuses a custom action of another workflow as FOREIGN_CUSTOM_ACTION and quotes both ids', () => {
    expect(decide(readRealEvent(files.foreignAction))).toEqual({
      rejected:
        'FOREIGN_CUSTOM_ACTION: the custom action cis134RR belongs to another workflow, not to ForensicTriageAction',
    });
  });

  it('matches the custom action on its ARN, not on its display name', () => {
    const event = withPath(
      readRealEvent(files.customAction),
      ['detail', 'actionName'],
      'Renamed in the console',
    );

    expect('ok' in decide(event)).toBe(true);
  });

  it('follows the configured custom action id', () => {
    const event = readRealEvent(files.customAction);

    const result = decide(event, { ...devConfig, SECURITYHUB_ACTION_ID: 'CordonTriage' });

    expect(refusalCode(result)).toBe('FOREIGN_CUSTOM_ACTION');
  });

  it('refuses imported Security Hub findings as SECURITYHUB_IMPORTED_DISABLED while the setting is off', () => {
    const event = importedEvent(asffFinding());

    expect(refusalCode(decide(event, { ...devConfig, ACCEPT_SECURITYHUB_IMPORTED: false }))).toBe(
      'SECURITYHUB_IMPORTED_DISABLED',
    );
  });

  it('accepts imported Security Hub instance findings once the setting is on', () => {
    const event = importedEvent(asffFinding());

    const result = decide(event, { ...devConfig, ACCEPT_SECURITYHUB_IMPORTED: true });

    expect('ok' in result && result.ok.trigger).toMatchObject({
      shape: 'securityhub-imported',
      requestedBy: 'securityhub',
    });
  });

  it('refuses a GuardDuty finding archived by hand as FINDING_ARCHIVED', () => {
    const event = withPath(canaryDetail(), ['service', 'archived'], true);

    expect(refusalCode(decide(event))).toBe('FINDING_ARCHIVED');
  });

  it('refuses an ASFF finding GuardDuty reports as archived as FINDING_ARCHIVED', () => {
    const event = withPath(asffFinding(), ['ProductFields', 'aws/guardduty/service/archived'], 'true');

    expect(refusalCode(decide(event))).toBe('FINDING_ARCHIVED');
  });

  it('refuses an ASFF finding whose record state is ARCHIVED as FINDING_ARCHIVED', () => {
    const event = withPath(asffFinding(), ['RecordState'], 'ARCHIVED');

    expect(refusalCode(decide(event))).toBe('FINDING_ARCHIVED');
  });

  it('refuses an archived flag of the wrong type as MALFORMED rather than guessing', () => {
    const event = withPath(canaryDetail(), ['service', 'archived'], 'true');

    expect(decide(event)).toEqual({ rejected: 'MALFORMED: service.archived is not true or false' });
  });
});

describe('quirks of real events', () => {
  it('reads a GuardDuty count given as text', () => {
    const result = decide(withPath(canaryDetail(), ['service', 'count'], '3'));

    expect('ok' in result && result.ok.trigger.count).toBe(3);
  });

  it('refuses a count that is not a whole number as MALFORMED', () => {
    expect(decide(withPath(canaryDetail(), ['service', 'count'], 'many'))).toEqual({
      rejected: 'MALFORMED: the finding count is not a whole number',
    });
  });

  it('derives the partition from the region, whatever the finding says', () => {
    const event = withPath(withPath(canaryDetail(), ['region'], 'us-gov-west-1'), ['partition'], 'aws');

    const result = decide(event);

    expect('ok' in result && result.ok.partition).toBe('aws-us-gov');
  });

  it('refuses an instance ARN whose partition contradicts its region as MALFORMED', () => {
    const finding = asffFinding();
    const [resource] = finding.Resources as Record<string, unknown>[];
    const event = withPath(
      finding,
      ['Resources'],
      [{ ...resource, Id: 'arn:aws-cn:ec2:us-east-1:193043430472:instance/i-0c10c2c7863d1a356' }],
    );

    expect(decide(event)).toEqual({
      rejected: 'MALFORMED: the instance ARN partition does not match its region',
    });
  });
});

describe('sample findings', () => {
  it('refuses a sample finding as SAMPLE_FINDING while ACCEPT_SAMPLE_FINDINGS is off', () => {
    const event = readRealEvent(files.partial);

    const result = decide(event, { ...devConfig, ACCEPT_SAMPLE_FINDINGS: false });

    expect(result).toEqual({
      rejected: 'SAMPLE_FINDING: sample findings start no response unless ACCEPT_SAMPLE_FINDINGS is on',
    });
  });

  it('accepts a sample finding and marks it as one while ACCEPT_SAMPLE_FINDINGS is on', () => {
    const event = readRealEvent(files.partial);

    const result = decide(event, { ...devConfig, ACCEPT_SAMPLE_FINDINGS: true });

    expect('ok' in result && result.ok.trigger.sample).toBe(true);
  });

  it('reads the sample flag inside additionalInfo.value, where get-findings puts it', () => {
    const finding = withAccount(readRealEvent(files.apiBackdoor), mappedAccount);
    const event = withPath(finding, ['Service', 'AdditionalInfo'], {
      Value: '{"sample":true}',
      Type: 'default',
    });

    expect(refusalCode(decide(event, productionConfig))).toBe('SAMPLE_FINDING');
  });

  it('reads the sample flag GuardDuty flattens into ASFF ProductFields', () => {
    const event = withPath(
      asffFinding(),
      ['ProductFields', 'aws/guardduty/service/additionalInfo/sample'],
      'true',
    );

    expect(refusalCode(decide(event, productionConfig))).toBe('SAMPLE_FINDING');
  });

  it('reads the ASFF Sample attribute', () => {
    const event = withPath(asffFinding(), ['Sample'], true);

    expect(refusalCode(decide(event, productionConfig))).toBe('SAMPLE_FINDING');
  });
});

describe('the severity threshold', () => {
  const strict: IntakeConfig = { ...devConfig, MIN_SEVERITY: 7 };

  it('refuses a partial GuardDuty envelope below the minimum as SEVERITY_BELOW_MINIMUM', () => {
    expect(decide(readRealEvent(files.partial), strict)).toEqual({
      rejected: 'SEVERITY_BELOW_MINIMUM: severity 2 is below the minimum of 7 for automatic triggers',
    });
  });

  it('refuses a full GuardDuty envelope below the minimum as SEVERITY_BELOW_MINIMUM', () => {
    expect(refusalCode(decide(guardDutyEvent(canaryDetail()), strict))).toBe('SEVERITY_BELOW_MINIMUM');
  });

  it('accepts a full GuardDuty envelope at the minimum', () => {
    const event = guardDutyEvent(withPath(canaryDetail(), ['severity'], 7));

    expect('ok' in decide(event, strict)).toBe(true);
  });

  it('refuses an imported Security Hub finding below the minimum as SEVERITY_BELOW_MINIMUM', () => {
    const event = importedEvent(asffFinding());

    expect(refusalCode(decide(event, { ...strict, ACCEPT_SECURITYHUB_IMPORTED: true }))).toBe(
      'SEVERITY_BELOW_MINIMUM',
    );
  });

  it('does not hold a bare finding handed over by a person to the minimum, and records its severity', () => {
    const result = decide(canaryDetail(), strict);

    expect('ok' in result && result.ok.trigger.severity).toBe(5);
  });

  it('does not hold a custom action to the minimum', () => {
    const result = decide(readRealEvent(files.customAction), { ...devConfig, MIN_SEVERITY: 10 });

    expect('ok' in result && result.ok.trigger.severity).toBe(7);
  });

  it('does not hold a manual start to the minimum', () => {
    const result = decide(
      {
        instanceId: 'i-0123456789abcdef0',
        reason: 'beaconing seen by the IDS',
        requestedBy: 'alice@example.com',
      },
      { ...devConfig, MIN_SEVERITY: 10 },
    );

    expect('ok' in result).toBe(true);
  });

  it('takes a GuardDuty ASFF finding severity from Severity.Product', () => {
    const result = decide(asffFinding());

    expect('ok' in result && result.ok.trigger.severity).toBe(2);
  });

  it('falls back to Normalized divided by ten when a GuardDuty ASFF Product is not a number', () => {
    const result = decide(withPath(asffFinding(), ['Severity', 'Product'], 'MEDIUM'));

    expect('ok' in result && result.ok.trigger.severity).toBe(4);
  });

  it('takes another product severity from Normalized divided by ten, not from Product', () => {
    // The custom-action finding comes from Security Hub's own controls: Product 70, Normalized 70.
    const result = decide(readRealEvent(files.customAction));

    expect('ok' in result && result.ok.trigger.severity).toBe(7);
  });

  it('falls back to the score Security Hub derives from Label when Normalized is absent', () => {
    const finding = withPath(asffFinding(), ['Severity'], { Label: 'HIGH' });

    const result = decide(finding);

    expect('ok' in result && result.ok.trigger.severity).toBe(7);
  });
});

describe('a manual start', () => {
  const start = {
    instanceId: 'i-0123456789abcdef0',
    reason: 'beaconing seen by the IDS',
    requestedBy: 'alice@example.com',
  };

  it('opens a case in Cordon own account and region when the start names neither', () => {
    expect(decide(start)).toEqual({
      ok: {
        instanceId: 'i-0123456789abcdef0',
        accountId: homeAccountId,
        region: homeRegion,
        partition: 'aws',
        openedAt: at,
        trigger: {
          source: 'manual',
          shape: 'manual',
          sample: false,
          remoteIps: [],
          requestedBy: 'alice@example.com',
          reason: 'beaconing seen by the IDS',
          receivedAt: at,
        },
      },
    });
  });

  it('uses the account and region the start names', () => {
    const result = decide({ ...start, accountId: '210987654321', region: 'cn-north-1' });

    expect('ok' in result && result.ok).toMatchObject({
      accountId: '210987654321',
      region: 'cn-north-1',
      partition: 'aws-cn',
    });
  });

  it('refuses a bad instance id as MALFORMED and sends no AWS call', async () => {
    const result = await intake({ ...start, instanceId: 'i-0123' });

    expect(result).toEqual({
      intake: { decision: 'rejected', reason: 'MALFORMED: manual start: instanceId: not an EC2 instance id' },
    });
    expect(callsSent()).toBe(0);
  });

  it('refuses control characters in the reason as MALFORMED', () => {
    const result = decide({ ...start, reason: 'looks bad\u001b[2J\nrm -rf /' });

    expect(result).toEqual({ rejected: 'MALFORMED: manual start: reason: contains control characters' });
  });

  it('refuses a bidirectional override in who asked as MALFORMED', () => {
    const result = decide({ ...start, requestedBy: 'alice\u202egro.elpmaxe@' });

    expect(result).toEqual({ rejected: 'MALFORMED: manual start: requestedBy: contains control characters' });
  });

  it('refuses an empty reason as MALFORMED', () => {
    expect(decide({ ...start, reason: '   ' })).toEqual({
      rejected: 'MALFORMED: manual start: reason: empty',
    });
  });

  it('refuses a misspelt field rather than defaulting the account it meant', () => {
    const result = decide({ ...start, accountID: '210987654321' });

    expect(result).toEqual({
      rejected:
        'MALFORMED: manual start: unexpected field; it takes instanceId, region, accountId, reason, requestedBy',
    });
  });
});

describe('text from a finding', () => {
  it('strips control characters from the title and caps it, so the case passes the safe-text rule', () => {
    const title = `evil.example\u0007\n\u001b[31m${'A'.repeat(2000)}`;
    const result = decide(withPath(canaryDetail(), ['title'], title));

    const reason = 'ok' in result ? result.ok.trigger.reason : '';
    // 511 characters of text and an ellipsis: the 512 that safe text allows.
    expect(reason).toBe(`evil.example [31m${'A'.repeat(494)}…`);
    expect(safeTextSchema.safeParse(reason).success).toBe(true);
  });

  it('replaces a broken surrogate in the finding type', () => {
    const result = decide(withPath(canaryDetail(), ['type'], 'Backdoor:EC2/\ud800x'));

    expect('ok' in result && result.ok.trigger.findingType).toBe('Backdoor:EC2/\ufffdx');
  });

  it('refuses a finding whose id is nothing but control characters as MALFORMED', () => {
    expect(decide(withPath(canaryDetail(), ['id'], '\n\t'))).toEqual({
      rejected: 'MALFORMED: the finding has no id',
    });
  });
});

describe('remote addresses', () => {
  function probeFrom(...ips: string[]) {
    return {
      actionType: 'PORT_PROBE',
      portProbeAction: {
        blocked: false,
        portProbeDetails: ips.map((ip) => ({
          localPortDetails: { port: 22 },
          remoteIpDetails: { ipAddressV4: ip },
        })),
      },
    };
  }

  it('collects every port prober, once each, without loopback or unspecified addresses', () => {
    const action = probeFrom('203.0.113.5', '127.0.0.1', '203.0.113.5', '0.0.0.0', '198.51.100.9');

    const result = decide(withPath(canaryDetail(), ['service', 'action'], action));

    expect('ok' in result && result.ok.trigger.remoteIps).toEqual(['203.0.113.5', '198.51.100.9']);
  });

  it('keeps at most 50 addresses', () => {
    const ips = Array.from({ length: 80 }, (_, i) => `203.0.113.${i + 1}`);

    const result = decide(withPath(canaryDetail(), ['service', 'action'], probeFrom(...ips)));

    expect('ok' in result && result.ok.trigger.remoteIps).toEqual(ips.slice(0, 50));
  });

  it('reads the API caller IPv6 address and drops the IPv6 loopback', () => {
    const action = {
      actionType: 'AWS_API_CALL',
      awsApiCallAction: { remoteIpDetails: { ipAddressV4: '::1', ipAddressV6: '2001:DB8::7' } },
    };

    const result = decide(withPath(canaryDetail(), ['service', 'action'], action));

    expect('ok' in result && result.ok.trigger.remoteIps).toEqual(['2001:db8::7']);
  });

  it('skips text that is not an address', () => {
    const action = probeFrom('198.51.100.0/24', 'evil.example', '203.0.113.1 ');

    const result = decide(withPath(canaryDetail(), ['service', 'action'], action));

    expect('ok' in result && result.ok.trigger.remoteIps).toEqual([]);
  });

  it('takes the ASFF source address when the traffic came in to the instance', () => {
    const finding = withPath(asffFinding(), ['Network'], { Direction: 'IN', SourceIpV4: '203.0.113.77' });

    const result = decide(finding);

    expect('ok' in result && result.ok.trigger.remoteIps).toEqual(['203.0.113.77', '199.241.229.197']);
  });
});

describe('an instance that already has an open case', () => {
  const existingCaseId = '20261127T180000Z-i-05746eb48123455e0-ab12';
  const lockKey = { pk: 'INSTANCE#123456789012#us-east-1#i-05746eb48123455e0', sk: 'OPEN' };

  function heldBy(caseExecutionArn: string) {
    ddbMock
      .on(TransactWriteCommand)
      .rejects(Object.assign(new Error('Transaction cancelled'), { name: 'TransactionCanceledException' }));
    ddbMock.on(GetCommand, { Key: lockKey }).resolves({ Item: { ...lockKey, caseId: existingCaseId } });
    ddbMock.on(GetCommand, { Key: { pk: `CASE#${existingCaseId}`, sk: 'CASE' } }).resolves({
      Item: {
        pk: `CASE#${existingCaseId}`,
        sk: 'CASE',
        instanceKey: lockKey.pk,
        caseId: existingCaseId,
        instanceId: 'i-05746eb48123455e0',
        accountId: '123456789012',
        region: 'us-east-1',
        partition: 'aws',
        openedAt: '2026-11-27T18:00:00.000Z',
        executionArn: caseExecutionArn,
        trigger: { ...(decide(canaryDetail()) as { ok: Case }).ok.trigger },
        status: 'open',
        updatedAt: '2026-11-27T18:00:00.000Z',
        findingIds: ['16afba5c5c43e07c9e3e5e2e544e95df'],
      },
    });
    ddbMock.on(UpdateCommand).resolves({});
  }

  it('joins the open case, notes it on that case timeline and writes no trigger.json', async () => {
    heldBy('arn:aws:states:eu-west-1:111122223333:execution:cordon-forensics-test:run-0');
    const update = withPath(
      withPath(canaryDetail(), ['id'], 'f00dfeedf00dfeedf00dfeedf00dfeed'),
      ['service', 'count'],
      7,
    );

    const result = await intake(update);

    expect(result).toEqual({
      intake: {
        decision: 'duplicate',
        reason: `DUPLICATE: i-05746eb48123455e0 already has the open case ${existingCaseId}; this trigger joined it`,
        caseId: existingCaseId,
      },
    });
    expect(ddbMock).toHaveReceivedCommandWith(UpdateCommand, {
      TableName: table,
      Key: { pk: `CASE#${existingCaseId}`, sk: 'CASE' },
      UpdateExpression:
        'SET findingIds = list_append(if_not_exists(findingIds, :empty), :f), updatedAt = :at',
      ConditionExpression: 'attribute_exists(pk) AND NOT contains(findingIds, :fid)',
      ExpressionAttributeValues: {
        ':f': ['f00dfeedf00dfeedf00dfeedf00dfeed'],
        ':fid': 'f00dfeedf00dfeedf00dfeedf00dfeed',
        ':empty': [],
        ':at': at,
      },
    });
    expect(timelineItems()).toContainEqual(
      expect.objectContaining({
        pk: `CASE#${existingCaseId}`,
        step: 'intake-finding',
        action: 'finding joined',
        status: 'info',
        target: 'i-05746eb48123455e0',
        detail:
          'guardduty-detail from operator; count 7; severity 5; type Canary:EC2/Stateless.IntegTest; finding f00dfeedf00dfeedf00dfeedf00dfeed',
      }),
    );
    expect(s3Mock.calls()).toHaveLength(0);
  });

  it('still answers duplicate when an update of the same finding is already listed', async () => {
    heldBy('arn:aws:states:eu-west-1:111122223333:execution:cordon-forensics-test:run-0');
    ddbMock
      .on(UpdateCommand)
      .rejects(Object.assign(new Error('already listed'), { name: 'ConditionalCheckFailedException' }));

    const result = await intake(withPath(canaryDetail(), ['service', 'count'], 12));

    expect(result.intake).toMatchObject({ decision: 'duplicate', caseId: existingCaseId });
    expect(timelineItems()).toContainEqual(
      expect.objectContaining({
        action: 'finding joined',
        detail: expect.stringContaining('count 12'),
      }),
    );
    expect(s3Mock.calls()).toHaveLength(0);
  });

  it('marks a finding new to the open case NOTIFIED with that case’s id, and lists it for the case’s end', async () => {
    heldBy('arn:aws:states:eu-west-1:111122223333:execution:cordon-forensics-test:run-0');
    const newId = 'f00dfeedf00dfeedf00dfeedf00dfeed';
    const arn = `arn:aws:guardduty:us-east-1:123456789012:detector/123456789012/finding/${newId}`;
    const another = withPath(withPath(canaryDetail(), ['id'], newId), ['arn'], arn);
    const inSecurityHub = { id: arn, productArn: 'arn:aws:securityhub:us-east-1::product/aws/guardduty' };

    const result = await intake(another);

    expect(result.intake).toMatchObject({ decision: 'duplicate', caseId: existingCaseId });
    expect(ddbMock).toHaveReceivedCommandWith(UpdateCommand, {
      Key: { pk: `CASE#${existingCaseId}`, sk: 'CASE' },
      UpdateExpression:
        'SET findingIds = list_append(if_not_exists(findingIds, :empty), :f), securityHubFindings = list_append(if_not_exists(securityHubFindings, :empty), :sh), updatedAt = :at',
      ExpressionAttributeValues: expect.objectContaining({ ':f': [newId], ':sh': [inSecurityHub] }),
    });
    expect(securityHubMock).toHaveReceivedCommandWith(BatchUpdateFindingsCommand, {
      FindingIdentifiers: [{ Id: arn, ProductArn: inSecurityHub.productArn }],
      Workflow: { Status: 'NOTIFIED' },
      Note: {
        Text: `Cordon case ${existingCaseId} already open on the same instance, took in this finding. Details: cordon status ${existingCaseId}`,
        UpdatedBy: 'cordon-test',
      },
      UserDefinedFields: { cordonCaseId: existingCaseId },
    });
  });

  it('leaves Security Hub alone for an update of a finding the case already lists', async () => {
    heldBy('arn:aws:states:eu-west-1:111122223333:execution:cordon-forensics-test:run-0');
    ddbMock
      .on(UpdateCommand)
      .rejects(Object.assign(new Error('already listed'), { name: 'ConditionalCheckFailedException' }));

    // GuardDuty re-sends the finding the case opened on: what the case's end set there must stay.
    const result = await intake(withPath(canaryDetail(), ['service', 'count'], 12));

    expect(result.intake).toMatchObject({ decision: 'duplicate', caseId: existingCaseId });
    expect(securityHubMock.calls()).toHaveLength(0);
  });

  it('finishes its own case when Step Functions retries this step of the same execution', async () => {
    heldBy(executionArn);
    const event = canaryDetail();

    const result = await intake(event);

    expect(result.intake).toEqual({
      decision: 'accepted',
      reason: `ACCEPTED: case ${existingCaseId} was opened by an earlier attempt of this execution`,
      caseId: existingCaseId,
    });
    expect(caseSchema.safeParse(result.case).success).toBe(true);
    expect(ddbMock).not.toHaveReceivedCommand(UpdateCommand);
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, expectedTriggerPut(existingCaseId, event));
  });
});

describe('a write that fails once the case is open', () => {
  const denied = () =>
    Object.assign(new Error('not authorized to perform: s3:PutObject'), {
      name: 'AccessDenied',
      $metadata: { httpStatusCode: 403 },
    });

  it('closes the case as failed and frees the instance when the failure is for good, and says so', async () => {
    s3Mock.on(PutObjectCommand).rejects(denied());
    ddbMock.on(UpdateCommand).resolves({});

    const failure = await intake(canaryDetail()).then(
      () => expect.unreachable('it succeeded'),
      (error: unknown) => error as Error,
    );

    expect(failure).toMatchObject({ name: 'AwsAccessDeniedError' });
    expect(failure.message).toMatch(
      /^Case \S+ was opened for i-05746eb48123455e0 .*then closed as failed and the instance freed for the next finding; nothing was done to the instance: AwsAccessDeniedError: AccessDenied: not authorized/,
    );
    expect(ddbMock).toHaveReceivedCommandWith(UpdateCommand, {
      ExpressionAttributeValues: expect.objectContaining({ ':s': 'failed', ':o': 'failed' }),
    });
    expect(ddbMock).toHaveReceivedCommandWith(TransactWriteCommand, {
      TransactItems: [
        expect.objectContaining({
          Delete: expect.objectContaining({
            Key: { pk: 'INSTANCE#123456789012#us-east-1#i-05746eb48123455e0', sk: 'OPEN' },
          }),
        }),
      ],
    });
  });

  it('says the case still holds the instance when it cannot be closed either', async () => {
    s3Mock.on(PutObjectCommand).rejects(denied());
    ddbMock.on(UpdateCommand).rejects(Object.assign(new Error('no'), { name: 'AccessDeniedException' }));

    const failure = await intake(canaryDetail()).then(
      () => expect.unreachable('it succeeded'),
      (error: unknown) => error as Error,
    );

    expect(failure.message).toContain('could not be closed: it still holds the instance');
  });

  it('leaves the case open for the retry when the failure is transient, keeping the error name the ASL retries', async () => {
    s3Mock
      .on(PutObjectCommand)
      .rejects(
        Object.assign(new Error('slow down'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }),
      );

    const failure = await intake(canaryDetail()).then(
      () => expect.unreachable('it succeeded'),
      (error: unknown) => error as Error,
    );

    expect(failure).toMatchObject({ name: 'AwsThrottlingError' });
    expect(failure.message).toContain("it stays open for Intake's retry");
    expect(ddbMock).not.toHaveReceivedCommand(UpdateCommand);
  });

  it('names the instance and the finding when no case could be opened at all', async () => {
    ddbMock.on(TransactWriteCommand).rejects(
      Object.assign(new Error('not authorized'), {
        name: 'AccessDeniedException',
        $metadata: { httpStatusCode: 400 },
      }),
    );

    const failure = await intake(canaryDetail()).then(
      () => expect.unreachable('it succeeded'),
      (error: unknown) => error as Error,
    );

    expect(failure).toMatchObject({ name: 'AwsAccessDeniedError' });
    expect(failure.message).toMatch(
      /^No case could be opened for i-05746eb48123455e0 in 123456789012 us-east-1 \(finding \w+\); nothing was done to the instance: /,
    );
    expect(s3Mock.calls()).toHaveLength(0);
  });
});

describe('the step input', () => {
  it('takes any JSON as the event', () => {
    const inputs = [
      { event: 42 },
      { event: [1, 'a'] },
      { event: null, executionArn },
      { event: { a: { b: [] } } },
    ];

    expect(inputs.map((i) => intakeInputSchema.safeParse(i).success)).toEqual([true, true, true, true]);
  });

  it('refuses an execution ARN that is not text', () => {
    expect(intakeInputSchema.safeParse({ event: {}, executionArn: 7 }).success).toBe(false);
  });

  it('opens the case without an execution ARN when none is given', async () => {
    const result = await intakeFinding({ event: canaryDetail() }, intakeDeps());

    expect(result.case && 'executionArn' in result.case).toBe(false);
  });
});

describe('the Lambda handler', () => {
  /** A complete, valid configuration: the handler reads it once, as in Lambda. */
  const environment: Record<string, string> = {
    CORDON_STAGE: 'test',
    CORDON_ACCOUNT_ID: homeAccountId,
    AWS_REGION: homeRegion,
    EVIDENCE_BUCKET: bucket,
    CASES_TABLE: table,
    ALERT_TOPIC_ARN: 'arn:aws:sns:eu-west-1:111122223333:cordon-test-alerts',
    SIGNING_KEY_ID: 'arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-4000-8000-000000000000',
    MEMBER_ROLE_NAME: 'CordonResponder',
    OBJECT_LOCK_MODE: 'GOVERNANCE',
    OBJECT_LOCK_DAYS: '1',
    MIN_SEVERITY: '7',
    ACCEPT_SAMPLE_FINDINGS: 'false',
    ACCEPT_SECURITYHUB_IMPORTED: 'false',
    SECURITYHUB_ACTION_ID: 'ForensicTriageAction',
    FORENSIC_CIDR: '',
    ASG_MODE: 'standby',
    CONNTRACK_WAIT_SECONDS: '0',
    REVOKE_SCOPE: 'instance',
    REQUIRE_IMDSV2: 'true',
    BLOCK_REMOTE_IPS: 'false',
    QUARANTINE_PROFILE_NAME: 'cordon-test-quarantine',
    SNAPSHOT_LOCK_DAYS: '0',
    SNAPSHOT_COPY_ACCOUNT_ID: '',
    SNAPSHOT_COPY_KMS_KEY_ARN: '',
    SNAPSHOT_BUDGET_SECONDS: '60',
    MEMORY_BUDGET_SECONDS: '60',
    MEMORY_DOCUMENT_LINUX: 'cordon-test-memory-linux',
    MEMORY_DOCUMENT_WINDOWS: 'cordon-test-memory-windows',
    TOOLS_BUCKET: 'cordon-test-tools',
    TOOLS_PREFIX: 'tools/',
    AVML_SHA256: 'a'.repeat(64),
    WINPMEM_SHA256: 'b'.repeat(64),
    AWS_ENDPOINT_URL: '',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
  };
  const context = {
    functionName: 'cordon-test-intake-finding',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:111122223333:function:cordon-test-intake-finding',
    memoryLimitInMB: '256',
    awsRequestId: 'c0ffee00-0000-4000-8000-000000000000',
    logGroupName: '/aws/lambda/cordon-test-intake-finding',
    logStreamName: 'test',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  } as Context;

  async function loadHandler() {
    for (const [name, value] of Object.entries(environment)) vi.stubEnv(name, value);
    const { resetConfig } = await import('../../../functions/core/config.js');
    const { resetStepContext } = await import('../../../functions/core/handler.js');
    resetConfig();
    resetStepContext();
    return (await import('../../../functions/forensics/intake-finding/handler.js')).handler;
  }

  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('refuses a sample finding under the production settings it reads from the environment', async () => {
    const handler = await loadHandler();

    const result = await handler({ event: readRealEvent(files.partial), executionArn }, context);

    expect(result.intake.reason).toMatch(/^SAMPLE_FINDING: /);
    expect(callsSent()).toBe(0);
  });

  it('opens a case in the configured table and bucket', async () => {
    const handler = await loadHandler();

    const result = await handler({ event: canaryDetail(), executionArn }, context);

    const c = result.case as Case;
    // The handler runs on the real clock, so only the lock item (which holds no clock time of its own) is
    // compared whole; the exact transaction is asserted above with a fixed clock.
    const [lockItem] = expectedOpenTransaction(c).TransactItems;
    expect(ddbMock.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems?.[0]).toEqual(lockItem);
    expect(s3Mock).toHaveReceivedCommandWith(PutObjectCommand, {
      Bucket: bucket,
      Key: `cases/${c.caseId}/trigger.json`,
    });
  });

  it('fails with InvalidStepInputError when the state machine passes a malformed execution ARN', async () => {
    const handler = await loadHandler();

    await expect(handler({ event: {}, executionArn: 7 }, context)).rejects.toMatchObject({
      name: 'InvalidStepInputError',
    });
  });
});
