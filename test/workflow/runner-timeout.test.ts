import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadDefinition, runStateMachine } from '../../scripts/local/runner.js';

/**
 * The execution's TimeoutSeconds, whose timer aws-local-stepfunctions 3.0.0 leaves armed when the run
 * fails before it starts (4 hours that kept `cordon start` from exiting after "Case FAILED"): the
 * runner keeps that timeout itself.
 */
let dir: string;
let hanging: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cordon-runner-'));
  hanging = join(dir, 'hanging.asl.yml');
  await writeFile(
    hanging,
    [
      'StartAt: Hang',
      'TimeoutSeconds: 30',
      'States:',
      '  Hang:',
      '    Type: Task',
      '    Resource: { Fn::GetAtt: [hang, Arn] }',
      '    TimeoutSeconds: 600',
      '    End: true',
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  vi.useRealTimers();
});

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('the local runner', () => {
  it('leaves no timer behind when the input is too deeply nested to copy (10,000 levels)', async () => {
    let deep: unknown = 1;
    for (let i = 0; i < 10_000; i++) deep = { a: deep };
    const before = timers();

    const never = Object.fromEntries(
      [...loadDefinition('statemachines/forensics.asl.yml').tasks.values()].map((fn) => [
        fn,
        async () => {
          throw new Error(`${fn} ran, but the input was never copied`);
        },
      ]),
    );

    const run = await runStateMachine('statemachines/forensics.asl.yml', deep, { handlers: never });

    expect(run).toMatchObject({ status: 'FAILED', error: { name: 'RangeError' } });
    expect(timers()).toBe(before);
  });

  it('fails an execution that runs past its TimeoutSeconds with States.Timeout, as AWS does', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });

    const running = runStateMachine(hanging, {}, { handlers: { hang: () => new Promise(() => undefined) } });
    await vi.advanceTimersByTimeAsync(30_000);
    const run = await running;

    expect(run).toMatchObject({
      status: 'FAILED',
      error: { name: 'States.Timeout', message: expect.stringContaining('TimeoutSeconds (30 s)') },
    });
  });
});
