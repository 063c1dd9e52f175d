import { describe, expect, it } from 'vitest';
import { Recorder, type TimelineEntry } from '../../../functions/core/cases.js';
import { sampleCase } from '../../support/core-fakes.js';

const deniedByDynamo = () =>
  Object.assign(new Error('not authorized to perform: dynamodb:BatchWriteItem'), {
    name: 'AccessDeniedException',
    $metadata: { httpStatusCode: 400 },
  });

/** A timeline that refuses every write, as a case table the role may not write would. */
const unwritable = {
  recordMany: async (_caseId: string, _events: readonly TimelineEntry[]) => {
    throw deniedByDynamo();
  },
};

/** A timeline whose writes wait until the test lets them through: what is in flight is visible. */
function heldTimeline() {
  const batches: TimelineEntry[][] = [];
  const waiting: (() => void)[] = [];
  return {
    batches,
    release: () => {
      for (const go of waiting.splice(0)) go();
    },
    recordMany: (_caseId: string, events: readonly TimelineEntry[]) =>
      new Promise<void>((resolve) => {
        batches.push([...events]);
        waiting.push(resolve);
      }),
  };
}

const at = () => new Date('2026-12-08T01:00:00.000Z');

describe('Recorder.run', () => {
  it('records the action with its request id and the time it happened, and returns what AWS answered', async () => {
    const events: TimelineEntry[] = [];
    const recorder = new Recorder(
      { recordMany: async (_c, e) => void events.push(...e) },
      sampleCase.caseId,
      'isolate',
      at,
    );
    const out = await recorder.run('ec2:CreateTags', 'i-1', async () => ({
      $metadata: { requestId: 'r-1' },
    }));
    await recorder.flush();
    expect(out).toEqual({ $metadata: { requestId: 'r-1' } });
    expect(events).toEqual([
      {
        at: '2026-12-08T01:00:00.000Z',
        step: 'isolate',
        action: 'ec2:CreateTags',
        status: 'ok',
        target: 'i-1',
        requestId: 'r-1',
      },
    ]);
  });

  it('does not wait for the timeline: the next call goes while the record is written, and what is recorded meanwhile goes in one batch', async () => {
    const timeline = heldTimeline();
    const recorder = new Recorder(timeline, sampleCase.caseId, 'isolate', at);
    const ok = async () => ({ $metadata: {} });
    // Three calls in a row return although no timeline write has finished.
    await recorder.run('ec2:A', 'x', ok);
    await recorder.run('ec2:B', 'x', ok);
    await recorder.note('c', 'info');
    expect(timeline.batches.map((b) => b.map((e) => e.action))).toEqual([['ec2:A']]);
    const flushed = recorder.flush();
    timeline.release();
    await new Promise((r) => setImmediate(r));
    // The first write done, the two events recorded while it was in flight go together, in order.
    expect(timeline.batches.map((b) => b.map((e) => e.action))).toEqual([['ec2:A'], ['ec2:B', 'c']]);
    timeline.release();
    await flushed;
  });

  it('says the action was done when only its record fails, keeping the error name the ASL routes on', async () => {
    const recorder = new Recorder(unwritable, sampleCase.caseId, 'isolate');
    let called = 0;
    await recorder.run('ec2:ModifyNetworkInterfaceAttribute (isolation group)', 'eni-1', async () => {
      called += 1;
      return {};
    });
    const failure = await recorder.flush().then(
      () => expect.unreachable('it succeeded'),
      (error: unknown) => error as Error,
    );
    expect(called).toBe(1);
    expect(failure).toMatchObject({ name: 'AwsAccessDeniedError' });
    expect(failure.message).toBe(
      'ec2:ModifyNetworkInterfaceAttribute (isolation group) on eni-1 was done, but the case timeline could not record it: AwsAccessDeniedError: AccessDeniedException: not authorized to perform: dynamodb:BatchWriteItem',
    );
    // Said once: a second flush has nothing left to report.
    await expect(recorder.flush()).resolves.toBeUndefined();
  });

  it('counts every event of a lost batch in what it says went unrecorded', async () => {
    const timeline = heldTimeline();
    let refuse = false;
    const recorder = new Recorder(
      {
        recordMany: async (c, e) => {
          if (refuse) throw deniedByDynamo();
          return timeline.recordMany(c, e);
        },
      },
      sampleCase.caseId,
      'isolate',
    );
    await recorder.note('first', 'info');
    await recorder.note('second', 'info', { target: 'eni-2' });
    await recorder.note('third', 'info');
    refuse = true;
    timeline.release();
    await expect(recorder.flush()).rejects.toThrow(
      /^second on eni-2 and 1 more event\(s\) was done, but the case timeline could not record it/,
    );
  });

  it('writes a failed call to the timeline before rethrowing its own error', async () => {
    const events: TimelineEntry[] = [];
    const recorder = new Recorder(
      { recordMany: async (_c, e) => void events.push(...e) },
      sampleCase.caseId,
      'isolate',
    );
    const refused = Object.assign(new Error('denied'), {
      name: 'UnauthorizedOperation',
      $metadata: { requestId: 'r-9' },
    });
    await expect(recorder.run('ec2:CreateTags', 'i-1', async () => Promise.reject(refused))).rejects.toBe(
      refused,
    );
    expect(events).toEqual([
      expect.objectContaining({
        action: 'ec2:CreateTags',
        status: 'failed',
        requestId: 'r-9',
        detail: expect.stringContaining('denied'),
      }),
    ]);
  });

  it('rethrows the action error itself when the action fails, even if the timeline cannot record it', async () => {
    const recorder = new Recorder(unwritable, sampleCase.caseId, 'isolate');
    const refused = Object.assign(new Error('denied'), { name: 'UnauthorizedOperation' });
    await expect(recorder.run('ec2:CreateTags', 'i-1', async () => Promise.reject(refused))).rejects.toBe(
      refused,
    );
  });
});
