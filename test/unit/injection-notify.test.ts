/**
 * Injection, part 4: the notifications a person reads (SNS, usually as e-mail). Text from outside
 * reaches them as a finding's type and id, an error's cause (AWS's messages echo what was sent), a
 * step's reason. None may forge a line (a fake `Subject:` or `Execution:`), hide or reorder text
 * (bidirectional overrides), or act on a terminal (ANSI, C1): each stays inert text on its own line.
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Case } from '../../functions/core/case.js';
import type { Notified } from '../../functions/core/cases.js';
import { findingLock, principalLock } from '../../functions/core/credentials.js';
import { credentialNotify } from '../../functions/credentials/credential-notify/credential-notify.js';
import { normaliseTrigger } from '../../functions/forensics/intake-finding/normalise.js';
import { notifyOutcome } from '../../functions/forensics/notify-outcome/notify-outcome.js';
import { MemoryTimeline, sampleCase } from '../support/core-fakes.js';
import {
  hostile,
  hostileText,
  invisibleButNewline,
  offending,
  oversized,
  payloads,
} from '../support/injection.js';
import { devConfig, now, readRealEvent, settingsOf } from '../support/intake-fixtures.js';
import { MemoryCases, userCredentialCase } from '../support/playbooks-fixtures.js';

const sns = mockClient(SNSClient);
const eventBridge = mockClient(EventBridgeClient);

beforeEach(() => {
  sns.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
  eventBridge.reset();
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
});

const everything = Object.values(payloads).join('');

function published(): { subject: string; body: string; chat?: string } {
  const calls = sns.commandCalls(PublishCommand);
  expect(calls).toHaveLength(1);
  const input = calls[0]?.args[0].input;
  if (input?.MessageStructure !== 'json')
    return { subject: String(input?.Subject), body: String(input?.Message) };
  // One body per protocol: the text for e-mail and the rest, the chat card for HTTPS.
  const bodies = JSON.parse(String(input.Message)) as { default: string; email: string; https: string };
  expect(bodies.email).toBe(bodies.default);
  return { subject: String(input.Subject), body: bodies.default, chat: bodies.https };
}

/** A chat card whose text holds nothing chat markdown acts on (mentions, links) and no raw control. */
function expectInertCard(chat: string | undefined): void {
  const card = JSON.parse(String(chat)) as { content: { title: string; description: string } };
  const reasons = card.content.description.split('\n').slice(1).join('\n');
  expect(reasons).not.toMatch(/[<>[\]`*_]/);
  expect(offending(card.content.title + card.content.description, invisibleButNewline)).toEqual([]);
}

/** What SNS accepts as a subject, and what no mail client can misread: printable ASCII, one line. */
function expectSafeSubject(subject: string): void {
  expect(subject).toMatch(/^[\x20-\x7e]{1,100}$/);
}

/** A body whose lines all start with one of `starts`, with nothing raw in it but the line feeds. */
function expectLines(body: string, starts: RegExp): string[] {
  expect(offending(body, invisibleButNewline)).toEqual([]);
  const lines = body.replace(/\n$/, '').split('\n');
  for (const line of lines) expect(line, line.slice(0, 120)).toMatch(starts);
  return lines;
}

const forensicLine =
  /^(Case \S+: [A-Z ,]+|Instance \S+ in account \d{12}, \S+|Trigger: .*|Requested by: .*|Steps:| {2}(succeeded|failed|skipped) +\w[\w ]*(: .*)?|The instance may be .*|check the instance now.*|Manifest: .*|Artifacts: \d+|Execution: arn:\S+|Cordon could not open a case.*|Reason: .*|)$/;

function notifyDeps() {
  const cases = {
    setStatus: vi.fn(async () => undefined),
    unlock: vi.fn(async () => undefined),
    notified: vi.fn(async (): Promise<Notified | undefined> => undefined),
    markNotified: vi.fn(async (_id: string, _n: Notified) => true),
  };
  return {
    sns: new SNSClient({}),
    events: new EventBridgeClient({}),
    topicArn: 'arn:aws:sns:us-east-1:123456789012:alerts',
    cases,
    recorder: new MemoryTimeline().recorder(sampleCase.caseId, 'notify-outcome'),
  };
}

describe('the outcome notification of a forensic case', () => {
  it.each(hostile)('keeps %s in an error cause on its own line, inert', async (_name, payload) => {
    const cause = JSON.stringify({ errorType: 'ContainmentError', errorMessage: `eni-1 refused${payload}` });

    await notifyOutcome(
      { case: sampleCase, triage: {}, protect: {}, error: { Error: 'ContainmentError', Cause: cause } },
      notifyDeps(),
    );

    const { subject, body, chat } = published();
    expectSafeSubject(subject);
    expectInertCard(chat);
    const lines = expectLines(body, forensicLine);
    expect(lines.filter((l) => l.startsWith('Execution:'))).toEqual([
      `Execution: ${sampleCase.executionArn}`,
    ]);
    expect(lines.filter((l) => /^Case /.test(l))).toHaveLength(1);
  });

  it('keeps every payload at once, and an oversized cause, bounded on one line when no case was opened', async () => {
    await notifyOutcome(
      { error: { Error: 'States.TaskFailed', Cause: `${everything}${oversized}` } },
      notifyDeps(),
    );

    const { subject, body } = published();
    expectSafeSubject(subject);
    const lines = expectLines(body, forensicLine);
    expect(lines).toHaveLength(2);
    expect(body.length).toBeLessThan(4_000);
  });

  it('never lets arbitrary text in an error forge a line', async () => {
    await fc.assert(
      fc.asyncProperty(hostileText, hostileText, async (error, cause) => {
        sns.resetHistory();

        await notifyOutcome(
          { case: sampleCase, triage: {}, error: { Error: error, Cause: cause } },
          notifyDeps(),
        );

        const { subject, body } = published();
        expectSafeSubject(subject);
        expectLines(body, forensicLine);
      }),
      { numRuns: 200 },
    );
  });

  it('carries the printable payloads a finding may hold as text of their own line, from intake to the message', async () => {
    const printable = hostile.filter(([, p]) => !offending(p).length).map(([, p]) => p);
    for (const payload of [...printable, ...hostile.map(([, p]) => `Recon${p}`)]) {
      const event = readRealEvent('gd_detail_canary_ec2_stateless_integtest.json');
      event.type = `Backdoor:EC2/C&CActivity.B${payload}`;
      event.title = `Title${payload}`;
      const normalised = normaliseTrigger(event, settingsOf(devConfig), now);
      if (!('ok' in normalised)) throw new Error(`intake refused the finding: ${normalised.rejected}`);
      const c: Case = { ...normalised.ok, caseId: sampleCase.caseId };
      sns.resetHistory();

      await notifyOutcome({ case: c, triage: {}, protect: {} }, notifyDeps());

      const { subject, body } = published();
      expectSafeSubject(subject);
      const lines = expectLines(body, forensicLine);
      expect(lines.filter((l) => l.startsWith('Trigger: '))).toHaveLength(1);
    }
  });
});

describe('the outcome notification of a credential case', () => {
  const credentialLine =
    /^(Case \S+: [A-Z ,]+|Principal: .*|Finding: .*|Used from: .*|Instance: i-[0-9a-f]+|Requested by: .*|Steps:| {2}(succeeded|failed|skipped) +\w[\w ]*(: .*)?|The principal may still .*|deactivate its keys.*|Manifest: .*|Execution: arn:\S+|Cordon could not open a credential case.*|Reason: .*|)$/;

  async function deps() {
    const cases = new MemoryCases();
    const c = userCredentialCase;
    await cases.openSubject([principalLock(c), findingLock(c)], { caseId: c.caseId, openedAt: c.openedAt });
    return {
      sns: new SNSClient({}),
      topicArn: 'arn:aws:sns:us-east-1:123456789012:alerts',
      cases,
      recorder: cases.recorder(c.caseId, 'credential-notify'),
    };
  }

  it.each(hostile)('keeps %s in a failed step on its own line, inert', async (_name, payload) => {
    const failed = { Error: 'AwsAccessDeniedError', Cause: `AccessDenied: not authorized${payload}` };

    await credentialNotify(
      { case: userCredentialCase, deactivate: failed, quarantine: failed, revoke: failed, error: failed },
      await deps(),
    );

    const { subject, body } = published();
    expectSafeSubject(subject);
    const lines = expectLines(body, credentialLine);
    expect(lines.filter((l) => l.startsWith('Execution:'))).toHaveLength(1);
  });
});
