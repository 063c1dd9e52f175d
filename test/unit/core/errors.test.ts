import { Readable } from 'node:stream';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configSlices } from '../../../functions/core/config.js';
import * as errors from '../../../functions/core/errors.js';
import {
  AwsAccessDeniedError,
  AwsServiceError,
  AwsThrottlingError,
  ContainmentError,
  CordonError,
  describeError,
  errorNames,
  InternalError,
  InvalidStepInputError,
  isAwsSdkError,
  normaliseError,
} from '../../../functions/core/errors.js';
import { stepHandler } from '../../../functions/core/handler.js';
import { lambdaContext, useStepEnvironment } from '../../support/injection.js';

/**
 * What a real DynamoDB client rejects with when AWS answers `status` with `body` (or when the
 * connection fails with `failure`): the SDK itself builds the error, `$metadata` and all.
 */
async function sdkFailure(answer: { status: number; body: object } | { failure: Error }): Promise<unknown> {
  const client = new DynamoDBClient({
    region: 'us-east-1',
    maxAttempts: 1,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    requestHandler: {
      handle: async () => {
        if ('failure' in answer) throw answer.failure;
        return {
          response: {
            statusCode: answer.status,
            headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'req-1' },
            body: Readable.from([Buffer.from(JSON.stringify(answer.body))]),
          },
        };
      },
    },
  });
  return client.send(new GetItemCommand({ TableName: 'cases', Key: { pk: { S: 'x' } } })).then(
    () => expect.unreachable('the call succeeded'),
    (error: unknown) => error,
  );
}

const zodError = (() => {
  const parsed = z.object({ caseId: z.string() }).safeParse({ caseId: 7 });
  if (parsed.success) throw new Error('the schema accepted a number');
  return parsed.error;
})();

describe('normaliseError', () => {
  it('makes an SDK throttling answer an AwsThrottlingError, which the ASL retries', async () => {
    // Prepare
    const sdk = await sdkFailure({
      status: 400,
      body: { __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException', message: 'Rate exceeded' },
    });

    // Act
    const e = normaliseError(sdk);

    // Assess
    expect(e).toBeInstanceOf(AwsThrottlingError);
    expect(e).toMatchObject({ name: 'AwsThrottlingError', retryable: true, cause: sdk });
  });

  it('makes an SDK access-denied answer an AwsAccessDeniedError, which nothing retries', async () => {
    const sdk = await sdkFailure({
      status: 400,
      body: { __type: 'com.amazon.coral.service#AccessDeniedException', Message: 'not authorized' },
    });

    const e = normaliseError(sdk);

    expect(e).toBeInstanceOf(AwsAccessDeniedError);
    expect(e).toMatchObject({ name: 'AwsAccessDeniedError', retryable: false, cause: sdk });
    expect(e.message).toBe('AccessDeniedException: not authorized');
  });

  it('makes an SDK service exception for access denied an AwsAccessDeniedError', () => {
    const sdk = new S3ServiceException({
      name: 'AccessDenied',
      $fault: 'client',
      $metadata: { httpStatusCode: 403 },
      message: 'Access Denied',
    });

    expect(normaliseError(sdk)).toMatchObject({ name: 'AwsAccessDeniedError', retryable: false });
  });

  it('makes an SDK 5xx answer an AwsServiceError, which the ASL retries', async () => {
    const sdk = await sdkFailure({
      status: 500,
      body: { __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: 'try again' },
    });

    const e = normaliseError(sdk);

    expect(e).toBeInstanceOf(AwsServiceError);
    expect(e).toMatchObject({ name: 'AwsServiceError', retryable: true, cause: sdk });
  });

  it("makes EC2's own InternalError code (a 500) an AwsServiceError, not Cordon's InternalError", () => {
    const sdk = Object.assign(new Error('An internal error has occurred'), {
      name: 'InternalError',
      $fault: 'server',
      $metadata: { httpStatusCode: 500 },
    });

    expect(normaliseError(sdk)).toMatchObject({ name: 'AwsServiceError', retryable: true });
  });

  it('makes a connection the SDK could not complete an AwsServiceError, which the ASL retries', async () => {
    const sdk = await sdkFailure({
      failure: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
    });

    expect(isAwsSdkError(sdk)).toBe(true);
    expect(normaliseError(sdk)).toMatchObject({ name: 'AwsServiceError', retryable: true });
  });

  it.each([
    ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'caseId')")],
    ['a ZodError', zodError],
    ['a plain Error', new Error('unexpected state')],
    ['a thrown string', 'something broke'],
    [
      'a plain object named like an AWS code, without the SDK metadata',
      { name: 'ThrottlingException', message: 'x' },
    ],
    [
      'an Error named like an AWS code, without the SDK metadata',
      Object.assign(new Error('denied'), { name: 'AccessDenied' }),
    ],
  ])('makes %s an InternalError, which nothing retries, keeping it as the cause', (_, thrown) => {
    const e = normaliseError(thrown);

    expect(e).toBeInstanceOf(InternalError);
    expect(e).toMatchObject({ name: 'InternalError', retryable: false, cause: thrown });
  });

  it('names the step and what was thrown in the InternalError', () => {
    const e = normaliseError(new TypeError('x is undefined'), 'isolate-instance');

    expect(e.message).toBe(
      'isolate-instance failed on an internal error (a bug, not an AWS fault): TypeError: x is undefined',
    );
  });

  it('says what was thrown in one line when the step is not known', () => {
    const e = normaliseError(zodError);

    expect(e.message).toMatch(/^Cordon failed on an internal error \(a bug, not an AWS fault\): ZodError: /);
    expect(e.message).not.toMatch(/\n/);
  });

  it('passes a Cordon error through unchanged', () => {
    const original = new ContainmentError('Isolation stopped at "swap groups"');

    expect(normaliseError(original, 'isolate-instance')).toBe(original);
  });
});

describe('stepHandler', () => {
  const step = (logic: () => Promise<unknown>) =>
    stepHandler('demo-step', configSlices.common, z.object({ caseId: z.string() }), logic);

  it('fails a bug in the logic as an InternalError that names the step', async () => {
    // Prepare
    await useStepEnvironment();
    const handler = step(async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'instanceId')");
    });

    // Act
    const run = handler({ caseId: 'case-1' }, lambdaContext);

    // Assess
    await expect(run).rejects.toMatchObject({
      name: 'InternalError',
      message:
        "demo-step failed on an internal error (a bug, not an AWS fault): TypeError: Cannot read properties of undefined (reading 'instanceId')",
    });
  });

  it('fails input the step cannot use as InvalidStepInputError, without running the logic', async () => {
    await useStepEnvironment();
    let ran = false;
    const handler = step(async () => {
      ran = true;
    });

    await expect(handler({ bogus: true }, lambdaContext)).rejects.toMatchObject({
      name: 'InvalidStepInputError',
    });
    expect(ran).toBe(false);
  });
});

describe('describeError', () => {
  it('names a bug InternalError rather than blaming AWS', () => {
    expect(describeError(new RangeError('Invalid array length'))).toMatchObject({ name: 'InternalError' });
  });
});

describe('the error classes', () => {
  const classes = Object.entries(errors as Record<string, unknown>).filter(
    (entry): entry is [string, new (message: string) => CordonError] =>
      typeof entry[1] === 'function' && entry[1].prototype instanceof CordonError,
  );

  it('are the names the ASL may match, one list for all of them', () => {
    expect(classes.map(([exported]) => exported).sort()).toEqual([...errorNames].sort());
  });

  it.each(classes)('%s sets its own name as a literal', (exported, ErrorClass) => {
    const e = new ErrorClass('message');

    expect(e.name).toBe(exported);
    expect(e).toBeInstanceOf(CordonError);
  });

  it('keep a name that does not come from the class, so minifying the class changes nothing', () => {
    // What a minifier without keepNames does to a class: gives it a name of one letter.
    const Minified = class extends InvalidStepInputError {};
    Object.defineProperty(Minified, 'name', { value: 'a' });

    expect(new Minified('bad input').name).toBe('InvalidStepInputError');
  });

  it('carry the original error as cause', () => {
    const cause = new Error('root');

    expect(new InternalError('wrapped', { cause }).cause).toBe(cause);
  });

  it('retry only throttling and AWS service failures', () => {
    const retryable = classes.filter(([, ErrorClass]) => new ErrorClass('m').retryable).map(([n]) => n);

    expect(retryable.sort()).toEqual(['AwsServiceError', 'AwsThrottlingError']);
  });
});
