import { describe, expect, it } from 'vitest';
import { progress } from '../../../functions/core/containment.js';
import { AwsServiceError, AwsThrottlingError, ContainmentError } from '../../../functions/core/errors.js';
import { awsError } from '../../support/containment-fixtures.js';

const planned = ['read', 'tag', 'protect', 'leave group'];

describe('progress().atOnce', () => {
  it('marks every phase done, in the order given, when all succeed', async () => {
    const steps = progress('Protection', planned);
    await steps.phase('read', async () => undefined);

    await steps.atOnce([
      ['tag', async () => undefined],
      ['protect', async () => undefined],
    ]);

    expect(steps.done).toEqual(['read', 'tag', 'protect']);
  });

  it('reports only once every phase has ended, naming each failure with its own error', async () => {
    const steps = progress('Protection', planned);
    let slowEnded = false;
    const slow = async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      slowEnded = true;
    };

    const error = await steps
      .atOnce([
        [
          'tag',
          async () => {
            throw awsError('UnauthorizedOperation');
          },
        ],
        ['protect', slow],
        [
          'leave group',
          async () => {
            throw awsError('ValidationError');
          },
        ],
      ])
      .catch((e: unknown) => e);

    expect(slowEnded).toBe(true);
    expect(error).toBeInstanceOf(ContainmentError);
    expect((error as Error).message).toBe(
      'Protection stopped at "tag": AwsAccessDeniedError: UnauthorizedOperation: UnauthorizedOperation (test); ' +
        '"leave group": AwsServiceError: ValidationError: ValidationError (test). ' +
        'Applied: protect. Not applied: tag; leave group; read.',
    );
  });

  it('names the phases that failed of one shared cause once', async () => {
    const steps = progress('Protection', planned);
    const cause = awsError('InternalError', 500);
    const saved = Promise.reject(cause);
    saved.catch(() => undefined);

    const error = await steps
      .atOnce([
        ['tag', () => saved],
        ['protect', () => saved],
      ])
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AwsServiceError);
    expect((error as Error).message).toContain('stopped at "tag", "protect": AwsServiceError: InternalError');
  });

  it('keeps a retryable name only when every failure may pass on its own', async () => {
    const throttled = await progress('Protection', planned)
      .atOnce([
        [
          'tag',
          async () => {
            throw awsError('Throttling');
          },
        ],
        [
          'protect',
          async () => {
            throw awsError('InternalError', 500);
          },
        ],
      ])
      .catch((e: unknown) => e);
    const mixed = await progress('Protection', planned)
      .atOnce([
        [
          'tag',
          async () => {
            throw awsError('Throttling');
          },
        ],
        [
          'protect',
          async () => {
            throw awsError('UnauthorizedOperation');
          },
        ],
      ])
      .catch((e: unknown) => e);

    expect(throttled).toBeInstanceOf(AwsThrottlingError);
    expect(mixed).toBeInstanceOf(ContainmentError);
  });

  it('reports each error of a phase that failed several ways', async () => {
    const error = await progress('Protection', planned)
      .atOnce([
        [
          'protect',
          async () => {
            throw new AggregateError([awsError('UnauthorizedOperation'), awsError('InvalidParameterValue')]);
          },
        ],
      ])
      .catch((e: unknown) => e);

    expect((error as Error).message).toContain('"protect": AwsAccessDeniedError: UnauthorizedOperation');
    expect((error as Error).message).toContain('"protect": AwsServiceError: InvalidParameterValue');
    expect((error as Error).message).toContain('Not applied: protect; read; tag; leave group.');
  });
});

describe('progress().phase', () => {
  it('reports each error of a phase that failed several ways, as an AWS failure, not a bug', async () => {
    const error = await progress('Protection', planned)
      .phase('read', async () => {
        throw new AggregateError([awsError('UnauthorizedOperation'), awsError('UnauthorizedOperation')]);
      })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ContainmentError);
    expect((error as Error).message).toBe(
      'Protection stopped at "read": AwsAccessDeniedError: UnauthorizedOperation: UnauthorizedOperation (test). ' +
        'Applied: nothing. Not applied: read; tag; protect; leave group.',
    );
  });

  it('always says what was and was not applied, however long the reasons', async () => {
    const steps = progress('Protection', planned);
    await steps.phase('read', async () => undefined);

    const error = await steps
      .atOnce(
        ['tag', 'protect', 'leave group'].map(
          (label, i) =>
            [
              label,
              async () => {
                throw awsError(`Refused${i}`, 400, 'x'.repeat(900));
              },
            ] as const,
        ),
      )
      .catch((e: unknown) => e);

    expect((error as Error).message).toMatch(/Applied: read\. Not applied: tag; protect; leave group\.$/);
  });
});
