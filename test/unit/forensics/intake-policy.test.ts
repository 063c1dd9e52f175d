import { GetCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Case } from '../../../functions/core/case.js';
import type { FirstLook } from '../../../functions/core/plan.js';
import { parseResponsePolicy } from '../../../functions/core/policy.js';
import { intakeFinding } from '../../../functions/forensics/intake-finding/intake-finding.js';
import {
  answerEverything,
  assessmentOf,
  callsSent,
  ddbMock,
  devConfig,
  executionArn,
  expectedOpenTransaction,
  intakeDeps,
  readRealEvent,
  timelineItems,
} from '../../support/intake-fixtures.js';

// The canary finding: i-05746eb48123455e0 in 123456789012 us-east-1, Canary:EC2/Stateless.IntegTest, severity 5.
const canary = () => readRealEvent('gd_detail_canary_ec2_stateless_integtest.json');
const instanceId = 'i-05746eb48123455e0';

const withPolicy = (document: unknown) => ({
  ...devConfig,
  RESPONSE_POLICY: parseResponsePolicy(JSON.stringify(document)),
});

const tagPolicy = {
  default: 'contain',
  tagKeys: ['cordon:response'],
  rules: [
    { name: 'payments', response: 'exempt', tags: { 'cordon:response': ['exempt'] } },
    { name: 'databases', response: 'approve', tags: { 'cordon:response': ['approve'] } },
  ],
};

/** A first look that read the instance with these tags. */
const lookWithTags = (tags: Record<string, string>) => async (): Promise<FirstLook> => ({
  ...assessmentOf(instanceId),
  tags,
});

function run(document: unknown, assess?: () => Promise<FirstLook>) {
  const deps = intakeDeps(withPolicy(document));
  return intakeFinding({ event: canary(), executionArn }, assess ? { ...deps, assess } : deps);
}

beforeEach(() => {
  answerEverything();
});

describe('an exempt instance', () => {
  it('is refused as EXEMPT, naming the rule, with no call to AWS and no look at the instance', async () => {
    const assess = vi.fn(lookWithTags({}));
    const document = {
      default: 'contain',
      rules: [{ name: 'canaries', response: 'exempt', findingTypes: ['Canary:*'] }],
    };

    const result = await run(document, assess);

    expect(result).toEqual({
      intake: {
        decision: 'rejected',
        reason: `EXEMPT: ${instanceId} in 123456789012 us-east-1 is exempt by response policy rule "canaries" (finding 16afba5c5c43e07c9e3e5e2e544e95df); no case was opened and nothing was done to the instance (rule "canaries" matched (finding type matches "Canary:*"))`,
      },
    });
    expect(callsSent()).toBe(0);
    expect(assess).not.toHaveBeenCalled();
  });

  it('is refused by its tag, read by the first look, with no call to AWS', async () => {
    const result = await run(tagPolicy, lookWithTags({ 'cordon:response': 'exempt' }));

    expect(result.intake).toEqual({
      decision: 'rejected',
      reason: expect.stringMatching(/^EXEMPT: .* is exempt by response policy rule "payments"/),
    });
    expect(result.case).toBeUndefined();
    expect(callsSent()).toBe(0);
  });

  it('says when it is the policy default that exempts it', async () => {
    const result = await run({ default: 'exempt' });

    expect(result.intake.reason).toMatch(/^EXEMPT: .* is exempt by the response policy's default/);
    expect(callsSent()).toBe(0);
  });
});

describe('an accepted case', () => {
  it('carries approve and the rule on the case, in the record it opens with', async () => {
    const result = await run(tagPolicy, lookWithTags({ 'cordon:response': 'approve', Name: 'db-1' }));

    const c = result.case as Case;
    expect(c.response).toEqual({ action: 'approve', rule: 'databases' });
    expect(ddbMock.commandCalls(TransactWriteCommand)[0]?.args[0].input).toEqual(expectedOpenTransaction(c));
    // The tags decided, but do not travel in the workflow's state.
    expect(result.assessment).toEqual(assessmentOf(instanceId));
  });

  it('carries evidence-only chosen by finding type and severity, and records the decision on the timeline', async () => {
    const document = {
      default: 'contain',
      rules: [
        { name: 'high', response: 'contain', minSeverity: 7 },
        {
          name: 'canary-evidence',
          response: 'evidence-only',
          findingTypes: ['Canary:EC2/*'],
          maxSeverity: 6,
        },
      ],
    };

    const result = await run(document);

    expect(result.case?.response).toEqual({ action: 'evidence-only', rule: 'canary-evidence' });
    expect(timelineItems()).toContainEqual(
      expect.objectContaining({
        action: 'response policy',
        status: 'info',
        target: instanceId,
        detail:
          'evidence-only by rule "canary-evidence": rule "canary-evidence" matched (finding type matches "Canary:EC2/*", severity 5)',
      }),
    );
  });

  it('is contained by default, the rule named default', async () => {
    const result = await run({ default: 'contain' });

    expect(result.case?.response).toEqual({ action: 'contain', rule: 'default' });
  });

  it('falls through a tag rule when the instance cannot be read, and says so on the timeline', async () => {
    const refused = Object.assign(new Error('not authorized'), { name: 'AssumeRoleError' });

    const result = await run(tagPolicy, () => Promise.reject(refused));

    expect(result.case?.response).toEqual({ action: 'contain', rule: 'default' });
    expect(timelineItems()).toContainEqual(
      expect.objectContaining({
        action: 'response policy',
        detail: expect.stringMatching(
          /^contain by rule "default": .*the instance's tags could not be read \(.*AssumeRoleError: not authorized\), so the tag conditions of "payments", "databases" could not match$/,
        ),
      }),
    );
  });

  it('waits for the first look before opening the case when a rule reads tags', async () => {
    let finish: (look: FirstLook) => void = () => undefined;
    const look = new Promise<FirstLook>((resolve) => {
      finish = resolve;
    });

    const result = run(tagPolicy, () => look);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(callsSent()).toBe(0);
    finish({ ...assessmentOf(instanceId), tags: {} });

    expect((await result).intake.decision).toBe('accepted');
  });

  it('opens the case while the first look is still under way when no rule reads tags', async () => {
    let finish: (look: FirstLook) => void = () => undefined;
    const look = new Promise<FirstLook>((resolve) => {
      finish = resolve;
    });

    const result = run({ default: 'approve' }, () => look);
    await vi.waitFor(() => expect(ddbMock).toHaveReceivedCommandTimes(TransactWriteCommand, 1));
    finish(assessmentOf(instanceId));

    expect((await result).case?.response).toEqual({ action: 'approve', rule: 'default' });
  });
});

describe('a finding that joins an open case', () => {
  it('leaves the open case its response: nothing it writes carries one', async () => {
    const existingCaseId = '20261127T180000Z-i-05746eb48123455e0-ab12';
    const lockKey = { pk: 'INSTANCE#123456789012#us-east-1#i-05746eb48123455e0', sk: 'OPEN' };
    ddbMock
      .on(TransactWriteCommand)
      .rejects(Object.assign(new Error('Transaction cancelled'), { name: 'TransactionCanceledException' }));
    ddbMock.on(GetCommand).resolves({});
    ddbMock.on(GetCommand, { Key: lockKey }).resolves({ Item: { ...lockKey, caseId: existingCaseId } });
    ddbMock.on(UpdateCommand).resolves({});

    const result = await run({ default: 'evidence-only' });

    expect(result.intake.decision).toBe('duplicate');
    const updates = ddbMock.commandCalls(UpdateCommand).map((c) => JSON.stringify(c.args[0].input));
    expect(updates.length).toBeGreaterThan(0);
    expect(updates.filter((u) => u.includes('response'))).toEqual([]);
  });
});
