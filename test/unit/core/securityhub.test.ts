import { Readable } from 'node:stream';
import { BatchUpdateFindingsCommand, SecurityHubClient } from '@aws-sdk/client-securityhub';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import type { SecurityHubFinding } from '../../../functions/core/case.js';
import {
  batches,
  type CaseNews,
  maxNoteText,
  noteFor,
  type SecurityHubDeps,
  securityHubFindingOf,
  tellSecurityHub,
  updateFindings,
  updateRequest,
  workflowFor,
} from '../../../functions/core/securityhub.js';
import { MemoryTimeline } from '../../support/core-fakes.js';
import { readRealEvent, withAccount } from '../../support/intake-fixtures.js';

let securityHub = mockClient(SecurityHubClient);
afterEach(() => securityHub.reset());

const caseId = '20261127T201003Z-i-0123456789abcdef0-3fa9';
const canaryArn =
  'arn:aws:guardduty:us-east-1:123456789012:detector/123456789012/finding/16afba5c5c43e07c9e3e5e2e544e95df';
const canaryInSecurityHub: SecurityHubFinding = {
  id: canaryArn,
  productArn: 'arn:aws:securityhub:us-east-1::product/aws/guardduty',
};
const customActionFinding: SecurityHubFinding = {
  id: 'arn:aws:securityhub:ap-southeast-2:123456789012:subscription/aws-foundational-security-best-practices/v/1.0.0/EC2.8/finding/482e8524-4f22-4a27-9dba-b8a582f24529',
  productArn: 'arn:aws:securityhub:ap-southeast-2::product/aws/securityhub',
};
const canary = {
  findingId: '16afba5c5c43e07c9e3e5e2e544e95df',
  accountId: '123456789012',
  region: 'us-east-1',
};

/** Dependencies whose client factory remembers the regions it was asked for. */
function deps(): SecurityHubDeps & { regions: string[] } {
  const regions: string[] = [];
  return {
    regions,
    client: (region) => {
      regions.push(region);
      return new SecurityHubClient({ region });
    },
    updatedBy: 'cordon-test',
  };
}

/** What the SDK rejects with when Security Hub answers `status` with the error `type`. */
function awsError(type: string, status: number, message = 'refused'): Error {
  return Object.assign(new Error(message), {
    name: type,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, requestId: 'req-err' },
  });
}

describe('securityHubFindingOf: which finding in Security Hub a trigger refers to', () => {
  it('takes the Id and ProductArn of the finding a Security Hub custom action carries', () => {
    const event = readRealEvent('sh_eb_custom_action_ec2_instance_afsbp_ec2_8.json');

    const found = securityHubFindingOf(event, {
      findingId: customActionFinding.id,
      accountId: '123456789012',
      region: 'ap-southeast-2',
    });

    expect(found).toEqual(customActionFinding);
  });

  it('names a GuardDuty finding as its integration imports it: the finding ARN, GuardDuty’s product in its region', () => {
    const detail = readRealEvent('gd_detail_canary_ec2_stateless_integtest.json');
    const envelope = { source: 'aws.guardduty', 'detail-type': 'GuardDuty Finding', detail };

    expect(securityHubFindingOf(detail, canary)).toEqual(canaryInSecurityHub);
    expect(securityHubFindingOf(envelope, canary)).toEqual(canaryInSecurityHub);
    expect(securityHubFindingOf({ Findings: [detail] }, canary)).toEqual(canaryInSecurityHub);
  });

  it('takes the partition of the finding ARN into GuardDuty’s product ARN', () => {
    const arn = 'arn:aws-us-gov:guardduty:us-gov-west-1:123456789012:detector/d1/finding/f00d';
    const finding = { id: 'f00d', arn, resource: { resourceType: 'Instance' } };

    expect(
      securityHubFindingOf(finding, {
        findingId: 'f00d',
        accountId: '123456789012',
        region: 'us-gov-west-1',
      }),
    ).toEqual({ id: arn, productArn: 'arn:aws-us-gov:securityhub:us-gov-west-1::product/aws/guardduty' });
  });

  it('reads the ARN of a finding as get-findings prints it (PascalCase)', () => {
    const finding = withAccount(
      readRealEvent('gd_api_getfindings_backdoor_cc_activity_b_dns_count3.json'),
      '444455556666',
    );
    const arn =
      'arn:aws:guardduty:us-east-2:444455556666:detector/d1/finding/14bd952561ab40e0b9275f648fcca0f2';

    const found = securityHubFindingOf(
      { ...finding, Arn: arn },
      { findingId: '14bd952561ab40e0b9275f648fcca0f2', accountId: '444455556666', region: 'us-east-2' },
    );

    expect(found?.id).toBe(arn);
  });

  it('finds nothing where the published sample redacted the account in the finding ARN', () => {
    const finding = withAccount(
      readRealEvent('gd_api_getfindings_backdoor_cc_activity_b_dns_count3.json'),
      '444455556666',
    );

    const found = securityHubFindingOf(finding, {
      findingId: '14bd952561ab40e0b9275f648fcca0f2',
      accountId: '444455556666',
      region: 'us-east-2',
    });

    expect(found).toBeUndefined();
  });

  it('finds nothing for a GuardDuty finding that does not carry its ARN', () => {
    const event = readRealEvent('gd_eb_partial_sshbruteforce_sample.json');

    expect(
      securityHubFindingOf(event, {
        findingId: '02be5693b63eea1d67e6f321c6aee4f3',
        accountId: '111122223333',
        region: 'us-east-1',
      }),
    ).toBeUndefined();
  });

  it('finds nothing where the ProductArn is not one Security Hub issues (the published arn:aws:: typo)', () => {
    const finding = readRealEvent('gd_asff_sshbruteforce_real_count74_from_docs.json');

    expect(
      securityHubFindingOf(finding, {
        findingId: String(finding.Id),
        accountId: '193043430472',
        region: 'us-east-1',
      }),
    ).toBeUndefined();
  });

  it.each([
    [
      'another account',
      'arn:aws:guardduty:us-east-1:999999999999:detector/d1/finding/16afba5c5c43e07c9e3e5e2e544e95df',
    ],
    [
      'another region',
      'arn:aws:guardduty:eu-west-1:123456789012:detector/d1/finding/16afba5c5c43e07c9e3e5e2e544e95df',
    ],
    [
      'another finding',
      'arn:aws:guardduty:us-east-1:123456789012:detector/d1/finding/0000000000000000000000000000000f',
    ],
    ['something that is no ARN', 'GeneratedFindingArn'],
  ])('finds nothing where the finding ARN names %s than the finding', (_what, arn) => {
    const detail = { ...readRealEvent('gd_detail_canary_ec2_stateless_integtest.json'), arn };

    expect(securityHubFindingOf(detail, canary)).toBeUndefined();
  });

  it('finds nothing for a manual start, or a trigger without a finding id', () => {
    const start = { instanceId: 'i-0123456789abcdef0', reason: 'suspicious', requestedBy: 'alice' };

    expect(securityHubFindingOf(start, { accountId: '123456789012', region: 'us-east-1' })).toBeUndefined();
    expect(
      securityHubFindingOf(readRealEvent('gd_detail_canary_ec2_stateless_integtest.json'), {
        ...canary,
        findingId: undefined,
      }),
    ).toBeUndefined();
  });

  it('takes, from a list, the finding the case was taken from, not its neighbour', () => {
    const other = { Id: 'other-finding', ProductArn: customActionFinding.productArn, Resources: [] };
    const event = {
      Findings: [other, { Id: customActionFinding.id, ProductArn: customActionFinding.productArn }],
    };

    const found = securityHubFindingOf(event, {
      findingId: customActionFinding.id,
      accountId: '123456789012',
      region: 'ap-southeast-2',
    });

    expect(found).toEqual(customActionFinding);
  });

  it('sends no Id that the text rule refuses, nor one over 512 characters', () => {
    const forged = { Id: 'finding\u202eevil', ProductArn: customActionFinding.productArn };
    const long = { Id: `f${'x'.repeat(512)}`, ProductArn: customActionFinding.productArn };

    expect(
      securityHubFindingOf(forged, {
        findingId: 'finding evil',
        accountId: '123456789012',
        region: 'ap-southeast-2',
      }),
    ).toBeUndefined();
    expect(
      securityHubFindingOf(long, {
        findingId: `${long.Id.slice(0, 511)}…`,
        accountId: '123456789012',
        region: 'ap-southeast-2',
      }),
    ).toBeUndefined();
  });
});

describe('what Cordon asks Security Hub to set', () => {
  it('builds the request from the case id and the outcome only: status, note, cordonCaseId', () => {
    const request = updateRequest([canaryInSecurityHub], { caseId, news: { kind: 'opened' } }, 'cordon-dev');

    expect(request).toEqual({
      FindingIdentifiers: [
        { Id: canaryArn, ProductArn: 'arn:aws:securityhub:us-east-1::product/aws/guardduty' },
      ],
      Workflow: { Status: 'NOTIFIED' },
      Note: {
        Text: `Cordon case ${caseId} opened on this finding: containment and evidence collection under way. Details: cordon status ${caseId}`,
        UpdatedBy: 'cordon-dev',
      },
      UserDefinedFields: { cordonCaseId: caseId },
    });
  });

  it.each<[string, 'NOTIFIED' | 'RESOLVED', CaseNews]>([
    ['the case opening', 'NOTIFIED', { kind: 'opened' }],
    ['a finding joining', 'NOTIFIED', { kind: 'joined' }],
    [
      'a completed case on a stage that resolves',
      'RESOLVED',
      { kind: 'outcome', outcome: 'completed', resolve: true },
    ],
    [
      'a completed case on a stage that does not',
      'NOTIFIED',
      { kind: 'outcome', outcome: 'completed', resolve: false },
    ],
    [
      'a partial case, even where the stage resolves',
      'NOTIFIED',
      { kind: 'outcome', outcome: 'partial', resolve: true },
    ],
    [
      'a failed case, even where the stage resolves',
      'NOTIFIED',
      { kind: 'outcome', outcome: 'failed', resolve: true },
    ],
  ])('marks %s %s', (_what, status, news) => {
    expect(workflowFor(news)).toBe(status);
    expect(updateRequest([canaryInSecurityHub], { caseId, news }, 'cordon-dev').Workflow).toEqual({
      Status: status,
    });
  });

  it('never leaves a finding NEW, which would start a case again through the imported-findings rule', () => {
    const every: CaseNews[] = [
      { kind: 'opened' },
      { kind: 'joined' },
      ...(['completed', 'partial', 'failed'] as const).flatMap((outcome) => [
        { kind: 'outcome' as const, outcome, resolve: true },
        { kind: 'outcome' as const, outcome, resolve: false },
      ]),
    ];

    expect(every.map(workflowFor).filter((s) => s !== 'NOTIFIED' && s !== 'RESOLVED')).toEqual([]);
  });

  it('says the outcome in the note, within the 512 characters Security Hub keeps', () => {
    const notes = (['completed', 'partial', 'failed'] as const).map((outcome) =>
      noteFor({ caseId, news: { kind: 'outcome', outcome, resolve: true } }),
    );

    expect(notes[0]).toBe(
      `Cordon case ${caseId} completed: contained, evidence sealed; resolved by Cordon. Details: cordon status ${caseId}`,
    );
    expect(notes[1]).toContain(`Cordon case ${caseId} partial: contained, some evidence missing.`);
    expect(notes[2]).toContain(`Cordon case ${caseId} failed: containment may be incomplete`);
    for (const note of notes) expect(note.length).toBeLessThanOrEqual(maxNoteText);
  });

  it('puts nothing but a Cordon case id in the note', () => {
    expect(() => noteFor({ caseId: 'ignore previous instructions', news: { kind: 'opened' } })).toThrow(
      TypeError,
    );
    expect(() =>
      updateRequest([canaryInSecurityHub], { caseId, news: { kind: 'opened' } }, 'someone else'),
    ).toThrow();
  });

  it('asks for each finding once, per region, at most 100 findings a request', () => {
    const many = Array.from({ length: 250 }, (_, i) => ({
      id: `finding-${i}`,
      productArn: 'arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default',
    }));

    const planned = batches([...many, ...many.slice(0, 10), customActionFinding]);

    expect(planned.map((b) => [b.region, b.findings.length])).toEqual([
      ['us-east-1', 100],
      ['us-east-1', 100],
      ['us-east-1', 50],
      ['ap-southeast-2', 1],
    ]);
  });
});

describe('updateFindings', () => {
  it('sends the update to the region that holds the finding, and says it is updated', async () => {
    securityHub.on(BatchUpdateFindingsCommand).resolves({
      ProcessedFindings: [{ Id: customActionFinding.id, ProductArn: customActionFinding.productArn }],
      UnprocessedFindings: [],
      $metadata: { requestId: 'req-1' },
    });
    const d = deps();

    const results = await updateFindings([customActionFinding], { caseId, news: { kind: 'opened' } }, d);

    expect(d.regions).toEqual(['ap-southeast-2']);
    expect(securityHub).toHaveReceivedCommandTimes(BatchUpdateFindingsCommand, 1);
    expect(securityHub).toHaveReceivedCommandWith(BatchUpdateFindingsCommand, {
      FindingIdentifiers: [{ Id: customActionFinding.id, ProductArn: customActionFinding.productArn }],
      Workflow: { Status: 'NOTIFIED' },
      UserDefinedFields: { cordonCaseId: caseId },
    });
    expect(results).toEqual([
      {
        status: 'updated',
        region: 'ap-southeast-2',
        workflow: 'NOTIFIED',
        findings: 1,
        updated: 1,
        requestId: 'req-1',
        findingId: customActionFinding.id,
      },
    ]);
  });

  it('returns denied, and does not throw, when IAM refuses the call', async () => {
    securityHub
      .on(BatchUpdateFindingsCommand)
      .rejects(awsError('AccessDeniedException', 403, 'not authorized'));

    const [result] = await updateFindings(
      [canaryInSecurityHub],
      { caseId, news: { kind: 'opened' } },
      deps(),
    );

    expect(result).toMatchObject({
      status: 'denied',
      errorCode: 'AccessDeniedException',
      updated: 0,
      requestId: 'req-err',
    });
  });

  it('returns disabled where Security Hub is not enabled (InvalidAccessException)', async () => {
    securityHub
      .on(BatchUpdateFindingsCommand)
      .rejects(
        awsError('InvalidAccessException', 401, 'Account 123456789012 is not subscribed to AWS Security Hub'),
      );

    const [result] = await updateFindings(
      [canaryInSecurityHub],
      { caseId, news: { kind: 'opened' } },
      deps(),
    );

    expect(result).toMatchObject({ status: 'disabled', errorCode: 'InvalidAccessException', updated: 0 });
    expect(result?.reason).toContain('not subscribed');
  });

  it('returns unprocessed with Security Hub’s code for findings it did not update', async () => {
    securityHub.on(BatchUpdateFindingsCommand).resolves({
      ProcessedFindings: [],
      UnprocessedFindings: [
        {
          FindingIdentifier: { Id: canaryArn, ProductArn: canaryInSecurityHub.productArn },
          ErrorCode: 'FindingNotFound',
          ErrorMessage: 'Finding Not Found',
        },
      ],
    });

    const [result] = await updateFindings(
      [canaryInSecurityHub],
      { caseId, news: { kind: 'opened' } },
      deps(),
    );

    expect(result).toMatchObject({
      status: 'unprocessed',
      errorCode: 'FindingNotFound',
      updated: 0,
      reason: '1 of 1 finding(s) not updated: FindingNotFound (Finding Not Found)',
    });
  });

  it('returns failed for anything else, a connection that failed included', async () => {
    securityHub.on(BatchUpdateFindingsCommand).rejects(new Error('socket hang up'));

    const [result] = await updateFindings(
      [canaryInSecurityHub],
      { caseId, news: { kind: 'opened' } },
      deps(),
    );

    expect(result).toMatchObject({ status: 'failed', updated: 0 });
  });

  it('is retried by the SDK when throttled, and then says updated', async () => {
    // The real client this time, its retries and all, over a request handler that answers as AWS would.
    securityHub.restore();
    onTestFinished(() => {
      securityHub = mockClient(SecurityHubClient);
    });
    const answers = [
      { status: 429, type: 'TooManyRequestsException', body: { message: 'Rate exceeded' } },
      { status: 200, type: undefined, body: { ProcessedFindings: [], UnprocessedFindings: [] } },
    ];
    let attempts = 0;
    const client = new SecurityHubClient({
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      requestHandler: {
        handle: async () => {
          const answer = answers[Math.min(attempts++, answers.length - 1)] as (typeof answers)[number];
          return {
            response: {
              statusCode: answer.status,
              headers: {
                'content-type': 'application/json',
                'x-amzn-requestid': `req-${attempts}`,
                ...(answer.type ? { 'x-amzn-errortype': answer.type } : {}),
              },
              body: Readable.from([Buffer.from(JSON.stringify(answer.body))]),
            },
          };
        },
      },
    });

    const [result] = await updateFindings(
      [canaryInSecurityHub],
      { caseId, news: { kind: 'opened' } },
      {
        client: () => client,
        updatedBy: 'cordon-test',
      },
    );

    expect(attempts).toBe(2);
    expect(result).toMatchObject({ status: 'updated', updated: 1, requestId: 'req-2' });
  });

  it('returns failed, without a call, for a request it will not build', async () => {
    const results = await updateFindings(
      [canaryInSecurityHub],
      { caseId: 'not-a-case', news: { kind: 'opened' } },
      deps(),
    );

    expect(results).toMatchObject([{ status: 'failed', updated: 0 }]);
    expect(securityHub).not.toHaveReceivedCommand(BatchUpdateFindingsCommand);
  });
});

describe('tellSecurityHub', () => {
  it('makes no call, and writes nothing, for a case no Security Hub finding started or joined', async () => {
    const timeline = new MemoryTimeline();

    const results = await tellSecurityHub(
      [undefined],
      { caseId, news: { kind: 'opened' } },
      {
        ...deps(),
        recorder: timeline.recorder(caseId, 'intake-finding'),
      },
    );

    expect(results).toEqual([]);
    expect(securityHub.calls()).toHaveLength(0);
    expect(timeline.events).toEqual([]);
  });

  it('writes each result on the case timeline: updated is ok, disabled skipped, the rest failed', async () => {
    securityHub
      .on(BatchUpdateFindingsCommand, {
        FindingIdentifiers: [{ Id: canaryArn, ProductArn: canaryInSecurityHub.productArn }],
      })
      .resolves({ UnprocessedFindings: [], $metadata: { requestId: 'req-1' } })
      .on(BatchUpdateFindingsCommand, {
        FindingIdentifiers: [{ Id: customActionFinding.id, ProductArn: customActionFinding.productArn }],
      })
      .rejects(awsError('InvalidAccessException', 401, 'not subscribed'));
    const timeline = new MemoryTimeline();

    await tellSecurityHub(
      [canaryInSecurityHub, customActionFinding],
      { caseId, news: { kind: 'opened' } },
      {
        ...deps(),
        recorder: timeline.recorder(caseId, 'intake-finding'),
      },
    );

    expect(timeline.events).toEqual(
      expect.arrayContaining([
        {
          caseId,
          step: 'intake-finding',
          action: 'securityhub:BatchUpdateFindings',
          status: 'ok',
          target: canaryArn,
          requestId: 'req-1',
          detail: 'updated: NOTIFIED, the case note and cordonCaseId on 1 finding(s) in us-east-1',
        },
        expect.objectContaining({
          action: 'securityhub:BatchUpdateFindings',
          status: 'skipped',
          target: customActionFinding.id,
          detail: expect.stringMatching(/^disabled: .*InvalidAccessException: .*the case goes on$/),
        }),
      ]),
    );
  });

  it('goes on when the timeline cannot be written either', async () => {
    securityHub.on(BatchUpdateFindingsCommand).rejects(awsError('AccessDeniedException', 403));
    const recorder = new MemoryTimeline().recorder(caseId, 'notify-outcome');
    vi.spyOn(recorder, 'note').mockRejectedValue(new Error('DynamoDB unavailable'));

    const results = await tellSecurityHub(
      [canaryInSecurityHub],
      { caseId, news: { kind: 'joined' } },
      {
        ...deps(),
        recorder,
      },
    );

    expect(results.map((r) => r.status)).toEqual(['denied']);
  });
});
