import { describe, expect, it } from 'vitest';
import { Recorder, type TimelineEvent } from '../../../functions/core/cases.js';
import { sampleCase } from '../../support/core-fakes.js';

/** A timeline that refuses every write, as a case table the role may not write would. */
const unwritable = {
  record: async (_caseId: string, _event: Omit<TimelineEvent, 'at'>) => {
    throw Object.assign(new Error('not authorized to perform: dynamodb:PutItem'), {
      name: 'AccessDeniedException',
      $metadata: { httpStatusCode: 400 },
    });
  },
};

describe('Recorder.run', () => {
  it('records the action with its request id and returns what AWS answered', async () => {
    const events: Omit<TimelineEvent, 'at'>[] = [];
    const recorder = new Recorder(
      { record: async (_c, e) => void events.push(e) },
      sampleCase.caseId,
      'isolate',
    );
    const out = await recorder.run('ec2:CreateTags', 'i-1', async () => ({
      $metadata: { requestId: 'r-1' },
    }));
    expect(out).toEqual({ $metadata: { requestId: 'r-1' } });
    expect(events).toEqual([
      { step: 'isolate', action: 'ec2:CreateTags', status: 'ok', target: 'i-1', requestId: 'r-1' },
    ]);
  });

  it('says the action was done when only its record fails, keeping the error name the ASL routes on', async () => {
    const recorder = new Recorder(unwritable, sampleCase.caseId, 'isolate');
    let called = 0;
    const failure = await recorder
      .run('ec2:ModifyNetworkInterfaceAttribute (isolation group)', 'eni-1', async () => {
        called += 1;
        return {};
      })
      .then(
        () => expect.unreachable('it succeeded'),
        (error: unknown) => error as Error,
      );
    expect(called).toBe(1);
    expect(failure).toMatchObject({ name: 'AwsAccessDeniedError' });
    expect(failure.message).toBe(
      'ec2:ModifyNetworkInterfaceAttribute (isolation group) on eni-1 was done, but the case timeline could not record it: AwsAccessDeniedError: AccessDeniedException: not authorized to perform: dynamodb:PutItem',
    );
  });

  it('rethrows the action error itself when the action fails, even if the timeline cannot record it', async () => {
    const recorder = new Recorder(unwritable, sampleCase.caseId, 'isolate');
    const refused = Object.assign(new Error('denied'), { name: 'UnauthorizedOperation' });
    await expect(recorder.run('ec2:CreateTags', 'i-1', async () => Promise.reject(refused))).rejects.toBe(
      refused,
    );
  });
});
