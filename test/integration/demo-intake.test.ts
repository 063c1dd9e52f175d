import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { caseIdPattern } from '../../functions/core/case.js';
import { type PluggableClient, useClientPlugin } from '../../functions/core/clients.js';
import { humanReport } from '../../scripts/demo.js';
import { type LocalCase, runLocalCase } from '../../scripts/local/case.js';
import { resetMoto } from '../../scripts/local/moto.js';
import { repoRoot, taskScope } from '../../scripts/local/runner.js';
import { type FaultInjector, installFaults } from '../support/faults.js';
import { realEventsDir } from '../support/fixtures.js';

/**
 * The demo decides what a deployed Intake decides: a trigger Intake refuses is refused in the demo
 * too, by name and without a single mutating AWS call, and whatever came from the trigger is shown
 * escaped. A file that holds no trigger is refused in one line before anything runs.
 */

const endpoint = inject('motoEndpoint');
const fixturesDir = resolve(repoRoot, 'test/fixtures/demo');
const fixture = (name: string) => resolve(fixturesDir, name);
const readFixture = (name: string): unknown => JSON.parse(readFileSync(fixture(name), 'utf8'));

const hostileIds = [
  'gd_eb_partial_instance_id_shell.json',
  'gd_eb_envelope_instance_id_shell.json',
  'gd_detail_instance_id_terminal_escapes.json',
  'gd_api_instance_id_command_substitution.json',
  'gd_asff_instance_arn_shell.json',
  'sh_eb_custom_action_instance_arn_escapes.json',
];
const notObjects = ['array.json', 'number.json'];

const malformedId = 'MALFORMED: the instance id is not i- followed by 8 or 17 hex digits';
/** What a terminal would act on or hide, had the demo printed it raw. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
const rawControl = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const readOnly = /^(Describe|Get|List|Head|Lookup|Search|Query|Scan|BatchGet)/;

interface Run {
  run: LocalCase;
  /** Every AWS call the workflow's Tasks made, as `State service:Operation`. */
  calls: string[];
}

const mutating = (calls: string[]) => calls.filter((c) => !readOnly.test(c.split(':').pop() ?? ''));

let recorder: FaultInjector;
const runs = new Map<string, Run>();

async function runCase(name: string, event: unknown): Promise<void> {
  const before = recorder.attempts.length;
  const run = await runLocalCase(event, { endpoint });
  const calls = recorder.attempts.slice(before).map((a) => `${a.stateName} ${a.operation}`);
  runs.set(name, { run, calls });
}

const ran = (name: string): Run => {
  const found = runs.get(name);
  if (!found) throw new Error(`${name} did not run`);
  return found;
};

/** Isolation denied for good on every ENI: the case fails after Intake opened it. */
function denyIsolation(): () => void {
  return useClientPlugin((client: PluggableClient) => {
    const stack = client.middlewareStack as unknown as {
      add: (mw: unknown, options: { step: string; name: string; priority: string }) => void;
    };
    stack.add(
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
        async (args: unknown) => {
          if (
            taskScope.getStore()?.stateName === 'Isolate Instance' &&
            context.commandName === 'ModifyNetworkInterfaceAttributeCommand'
          ) {
            throw Object.assign(new Error('not authorized to perform: ec2:ModifyNetworkInterfaceAttribute'), {
              name: 'UnauthorizedOperation',
              $fault: 'client',
              $metadata: { httpStatusCode: 403, requestId: 'denied-by-test' },
            });
          }
          return next(args);
        },
      { step: 'finalizeRequest', name: 'cordonDenyIsolation', priority: 'low' },
    );
  });
}

beforeAll(async () => {
  await resetMoto(endpoint);
  // Records every call made inside a Task; no fault is armed, so none is failed.
  recorder = installFaults();
  for (const name of [...hostileIds, ...notObjects, 'gd_eb_envelope_finding_in_eu_west_1.json']) {
    await runCase(name, readFixture(name));
  }
  const allow = denyIsolation();
  try {
    await runCase(
      'failed',
      JSON.parse(
        readFileSync(resolve(realEventsDir, 'gd_detail_canary_ec2_stateless_integtest.json'), 'utf8'),
      ),
    );
  } finally {
    allow();
  }
}, 300_000);

afterAll(() => recorder?.uninstall());

describe.each(hostileIds)('a finding whose instance id is not one: %s', (name) => {
  it('is rejected by Intake with its reason, and no case is opened', () => {
    const { report } = ran(name).run;

    expect(report.outcome).toBe('rejected');
    expect(report.reason).toBe(malformedId);
    expect(report.caseId).toBeNull();
    expect(report.evidence).toEqual([]);
    expect(report.steps.map((s) => s.name)).toEqual(['Intake Finding']);
  });

  it('makes no mutating AWS call', () => {
    expect(mutating(ran(name).calls)).toEqual([]);
  });

  it('is not mapped onto the seeded instance, and the report says which value was kept', () => {
    const { mapping } = ran(name).run;

    expect(mapping.from).toEqual({});
    expect(mapping.kept).toHaveLength(1);
    expect(mapping.kept[0]?.what).toBe('instance id');
  });

  it('prints every value from the trigger escaped in the human report', () => {
    const text = humanReport(ran(name).run).join('\n');

    expect(text).not.toMatch(rawControl);
    expect(text).toContain(malformedId);
  });
});

describe('the human report of a finding whose instance id carries terminal escapes', () => {
  it('shows the escapes as text: screen clear, title change, bell, right-to-left override, one-byte CSI', () => {
    const text = humanReport(ran('gd_detail_instance_id_terminal_escapes.json').run).join('\n');

    expect(text).toContain('instance id "i-05746eb4\\u001b[2J\\u001b]0;owned\\u0007\\u202eh-\\u009b31m"');
  });
});

describe.each(notObjects)('a trigger that is not a JSON object: %s', (name) => {
  it('is rejected by Intake as MALFORMED, with no mutating AWS call', () => {
    const { run, calls } = ran(name);

    expect(run.report.outcome).toBe('rejected');
    expect(run.report.reason).toBe('MALFORMED: the trigger is not a JSON object');
    expect(run.report.steps.map((s) => s.name)).toEqual(['Intake Finding']);
    expect(mutating(calls)).toEqual([]);
  });
});

describe('a GuardDuty finding in eu-west-1 inside a us-east-1 envelope', () => {
  it('is placed by its own region and account, as Intake reads them, and completes', () => {
    const { run } = ran('gd_eb_envelope_finding_in_eu_west_1.json');

    expect(run.report.outcome, run.report.reason).toBe('completed');
    expect(run.report).toMatchObject({
      instanceId: run.seeded.instanceId,
      accountId: '123456789012',
      region: 'us-east-1',
    });
    expect(run.mapping.from).toEqual({
      instanceId: 'i-05746eb48123455e0',
      accountId: '111122223333',
      region: 'eu-west-1',
    });
  });

  it('makes its containment calls where the recorder sees them, so that an empty list above means none', () => {
    const { calls } = ran('gd_eb_envelope_finding_in_eu_west_1.json');

    expect(mutating(calls)).toContain('Isolate Instance ec2:ModifyNetworkInterfaceAttribute');
  });
});

describe('a case that fails after Intake opened it', () => {
  it('keeps its case id, instance and evidence in the report, with the reason the step gave', () => {
    const { run } = ran('failed');
    const { report } = run;

    expect(report.outcome).toBe('failed');
    expect(report.caseId).toMatch(caseIdPattern);
    expect(report.caseId).toContain(run.seeded.instanceId);
    expect(report.instanceId).toBe(run.seeded.instanceId);
    expect(report.reason).toMatch(/^isolate: ContainmentError: .*UnauthorizedOperation/);
    expect(report.evidence.map((e) => e.key)).toContain(`cases/${report.caseId}/trigger.json`);
  });

  it('prints the case id in the human report', () => {
    const { run } = ran('failed');

    expect(humanReport(run)).toContain(`Case      ${run.report.caseId}`);
    expect(humanReport(run)).toContain('Outcome   FAILED');
  });
});

/** `npm run -s demo -- ARGS`, as a person runs it. */
function demo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, failed) => {
    const child = spawn('npm', ['run', '-s', 'demo', '--', ...args], {
      cwd: repoRoot,
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', failed);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('npm run demo', () => {
  let work: string;
  // Nothing listens there: a demo that ran anything against it would fail with exit 1, not refuse with 2.
  const nowhere = ['--endpoint', 'http://127.0.0.1:9'];
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'cordon-demo-'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  /** Bytes that are the point of a test, written here so that no editor or formatter changes them. */
  const file = (name: string, bytes: Buffer | string) => {
    const path = join(work, name);
    writeFileSync(path, bytes);
    return path;
  };

  it("prints Intake's refusal of a finding whose instance id is a shell command, with --json", async () => {
    const out = await demo([
      '--json',
      '--event',
      fixture('gd_eb_partial_instance_id_shell.json'),
      '--endpoint',
      endpoint,
    ]);

    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ outcome: 'rejected', reason: malformedId, caseId: null });
  }, 120_000);

  it('prints the instance id with terminal escapes escaped in its banner', async () => {
    const out = await demo([
      '--event',
      fixture('gd_detail_instance_id_terminal_escapes.json'),
      '--endpoint',
      endpoint,
    ]);

    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).not.toMatch(rawControl);
    expect(out.stdout).toContain('\\u001b[2J');
    expect(out.stdout).toContain(`Outcome   REJECTED`);
  }, 120_000);

  it('reads a file saved with a UTF-8 byte-order mark, says so, and hands the finding to Intake', async () => {
    const finding = readFileSync(
      resolve(
        realEventsDir,
        'gd_detail_REJECT_accesskey_recon_maliciousipcaller_custom_sample_archived.json',
      ),
    );
    const path = file('bom.json', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), finding]));

    const out = await demo(['--json', '--event', path, '--endpoint', endpoint]);

    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain(`demo: ${path} starts with a UTF-8 byte-order mark; read without it\n`);
    expect(JSON.parse(out.stdout)).toMatchObject({
      outcome: 'rejected',
      reason: 'RESOURCE_NOT_INSTANCE: the finding is about a resource of type AccessKey, not an EC2 instance',
    });
  }, 120_000);

  it.each([
    ['null', () => fixture('null.json')],
    ['0', () => file('zero.json', '0\n')],
    ['false', () => file('false.json', 'false\n')],
    ['an empty string', () => file('empty-string.json', '""\n')],
  ])(
    'hands %s to Intake, which refuses it by name (the first state reads the trigger from the context)',
    async (_what, path) => {
      const out = await demo(['--json', '--event', path(), '--endpoint', endpoint]);

      expect(out.code, out.stderr).toBe(0);
      expect(JSON.parse(out.stdout)).toMatchObject({
        outcome: 'rejected',
        reason: 'MALFORMED: the trigger is not a JSON object',
        caseId: null,
      });
    },
    120_000,
  );

  it.each([
    ['an empty file', () => file('empty.json', ''), /is empty; it should hold one trigger as JSON$/],
    [
      'UTF-16',
      () => file('utf16.json', Buffer.from(`\ufeff${JSON.stringify(readFixture('number.json'))}`, 'utf16le')),
      /is UTF-16 text .*; save it as UTF-8$/,
    ],
    ['text cut short', () => file('cut.json', '{"detail": {'), /is not JSON: /],
  ])(
    'refuses %s in one line before anything runs',
    async (_what, path, reason) => {
      const out = await demo(['--json', '--event', path(), ...nowhere]);

      expect(out.code, out.stderr).toBe(2);
      expect(out.stdout).toBe('');
      expect(out.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(out.stderr.trimEnd()).toMatch(reason);
    },
    60_000,
  );
});
