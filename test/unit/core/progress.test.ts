import { describe, expect, it } from 'vitest';
import { progress, settledAll } from '../../../functions/core/containment.js';
import { AwsThrottlingError, RevocationError } from '../../../functions/core/errors.js';
import { awsError } from '../../support/containment-fixtures.js';

const later = <T>(ms: number, value: T, fail = false) =>
  new Promise<T>((resolve, reject) => setTimeout(() => (fail ? reject(value) : resolve(value)), ms));

describe('settledAll', () => {
  it('returns every result, in order', async () => {
    await expect(settledAll([later(5, 'a'), Promise.resolve(2), undefined])).resolves.toEqual([
      'a',
      2,
      undefined,
    ]);
  });

  it('throws only once every call has settled, a transient failure before one for good', async () => {
    let slowDone = false;
    const slow = later(20, 'slow').then((v) => {
      slowDone = true;
      return v;
    });
    const forGood = awsError('InvalidParameterValue');
    const throttled = awsError('Throttling');

    const error = await settledAll([Promise.reject(forGood), slow, later(5, throttled, true)]).catch(
      (e: unknown) => e,
    );

    expect(slowDone).toBe(true);
    expect(error).toBe(throttled);
  });
});

describe('progress().together', () => {
  const planned = ['read', 'deny', 'swap', 'imdsv2', 'event'];

  it('marks every phase done when all its changes are', async () => {
    const steps = progress('Revocation', planned, RevocationError);

    await steps.together([
      { label: 'deny', target: 'a', work: async () => {} },
      { label: 'deny', target: 'b', work: async () => {} },
      { label: 'swap', work: async () => {} },
    ]);

    expect(steps.done).toEqual(['deny', 'swap']);
  });

  it('names every failed change, what was applied (in part too) and what was not, after all have settled', async () => {
    const steps = progress('Revocation', planned, RevocationError);
    await steps.phase('read', async () => {});
    let swapDone = false;

    const error = await steps
      .together([
        { label: 'deny', target: 'a', work: async () => {} },
        {
          label: 'deny',
          target: 'b',
          work: async () => {
            throw awsError('LimitExceeded', 409);
          },
        },
        {
          label: 'swap',
          work: async () => {
            await later(10, undefined);
            swapDone = true;
          },
        },
        {
          label: 'imdsv2',
          work: () => {
            // Throws before returning a promise: the others still run.
            throw awsError('UnauthorizedOperation', 403);
          },
        },
      ])
      .catch((e: unknown) => e);

    expect(swapDone).toBe(true);
    expect(error).toBeInstanceOf(RevocationError);
    expect((error as Error).message).toBe(
      'Revocation stopped at "deny (b)", "imdsv2". Applied: read; swap; deny (a). Not applied: deny (b); imdsv2; event. ' +
        '"deny (b)": AwsServiceError: LimitExceeded: LimitExceeded (test); "imdsv2": AwsAccessDeniedError: UnauthorizedOperation: UnauthorizedOperation (test).',
    );
    expect(steps.done).toEqual(['read', 'swap']);
  });

  it('says once what several changes failed alike with', async () => {
    const steps = progress('Revocation', planned, RevocationError);
    const full = () => Promise.reject(new RevocationError('role-a has no room left'));

    const error = await steps
      .together([
        { label: 'deny', target: 'a', work: full },
        { label: 'deny', target: 'b', work: full },
      ])
      .catch((e: unknown) => e);

    expect((error as Error).message).toBe(
      'Revocation stopped at "deny (a)", "deny (b)". Applied: nothing. Not applied: deny (a); deny (b); read; swap; imdsv2; event. ' +
        '"deny (a)", "deny (b)": RevocationError: role-a has no room left.',
    );
  });

  it('keeps a retryable name when any failed change may pass on a retry', async () => {
    const steps = progress('Revocation', planned, RevocationError);

    const error = await steps
      .together([
        { label: 'deny', work: () => Promise.reject(awsError('InvalidParameterValue')) },
        { label: 'swap', work: () => Promise.reject(awsError('RequestLimitExceeded', 503)) },
      ])
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AwsThrottlingError);
  });
});

describe('several calls of one phase failing at once (an AggregateError)', () => {
  it('names the phase once, under an AWS name, in phase() and in together()', async () => {
    const several = () =>
      Promise.reject(
        new AggregateError([awsError('UnauthorizedOperation'), awsError('UnauthorizedOperation')]),
      );
    const alone = await progress('Protection', ['attributes', 'volumes'])
      .phase('attributes', several)
      .catch((e: unknown) => e as Error);
    expect(alone.name).toBe('ContainmentError');
    expect(alone.message).toMatch(/^Protection stopped at "attributes": AwsAccessDeniedError: /);

    const both = (await progress('Protection', ['attributes', 'volumes'])
      .together([
        { label: 'attributes', work: several },
        { label: 'volumes', work: async () => undefined },
      ])
      .catch((e: unknown) => e)) as Error;
    expect(both.name).toBe('ContainmentError');
    expect(both.message).toContain(
      'Protection stopped at "attributes". Applied: volumes. Not applied: attributes.',
    );
    expect(both.message.match(/"attributes"/g)).toHaveLength(2);
  });

  it('keeps a retryable name when one of the calls may pass on a retry', async () => {
    const error = await progress('Protection', ['attributes'])
      .phase('attributes', () =>
        Promise.reject(new AggregateError([awsError('UnauthorizedOperation'), awsError('Throttling')])),
      )
      .catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(AwsThrottlingError);
  });
});
