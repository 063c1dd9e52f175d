import { readdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { type ConfigSlice, configSlices, loadConfig } from '../../../functions/core/config.js';
import { ConfigurationError } from '../../../functions/core/errors.js';
import { stepContext } from '../../../functions/core/handler.js';
import { lambdaContext, stepEnvironment, useStepEnvironment } from '../../support/injection.js';

const root = resolve(import.meta.dirname, '../../..');
const functions = (
  parse(readFileSync(resolve(root, 'serverless.yml'), 'utf8'), { logLevel: 'error' }) as {
    functions: Record<string, { handler: string }>;
  }
).functions;
const handlerFileOf = (fn: string) => resolve(root, `${functions[fn]?.handler.replace(/\.\w+$/, '')}.ts`);
const code = (file: string) =>
  readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');

/** The slice a function's handler names: `stepHandler(name, configSlices.<slice>, …)`. */
function sliceNameOf(fn: string): string | undefined {
  return /\bstepHandler\(\s*[^,]+,\s*configSlices\.(\w+)\s*,/.exec(code(handlerFileOf(fn)))?.[1];
}
function sliceOf(fn: string): ConfigSlice {
  const slice = configSlices[sliceNameOf(fn) as keyof typeof configSlices];
  if (!slice) throw new Error(`${fn} names no slice of configSlices`);
  return slice;
}
/** Every `config.X`, `cfg.X` (and `config?.X`) a set of sources reads. */
function settingsRead(files: string[]): string[] {
  const names = files.flatMap((f) =>
    [...code(f).matchAll(/\b(?:config|cfg)\??\.([A-Z][A-Z0-9_]*)\b/g)].map((m) => m[1] ?? ''),
  );
  return [...new Set(names)].sort();
}
const sourcesOf = (fn: string) => {
  const folder = dirname(handlerFileOf(fn));
  return readdirSync(folder)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => resolve(folder, f));
};

const allFunctions = Object.keys(functions);
const forensicWorkflow = allFunctions.filter((fn) =>
  functions[fn]?.handler.startsWith('functions/forensics/'),
);

describe('each function’s configuration slice', () => {
  it.each(allFunctions)('is named by the handler of %s', (fn) => {
    expect(Object.keys(configSlices)).toContain(sliceNameOf(fn));
  });

  it.each(allFunctions)('holds every setting the sources of %s read', (fn) => {
    const read = settingsRead(sourcesOf(fn));

    expect(read.filter((name) => !sliceOf(fn).keys.includes(name as never))).toEqual([]);
  });

  it('holds, in the common slice, every setting the step context is built from', () => {
    const read = settingsRead([resolve(root, 'functions/core/handler.ts')]);

    expect(read.length).toBeGreaterThan(0);
    expect(read.filter((name) => !configSlices.common.keys.includes(name as never))).toEqual([]);
  });

  it('includes the common settings in every slice', () => {
    for (const slice of Object.values(configSlices)) {
      expect(slice.keys).toEqual(expect.arrayContaining([...configSlices.common.keys]));
    }
  });
});

describe('a malformed playbook setting', () => {
  const malformed = { AUTO_BLOCK_TTL: 'banana', POLICY_SENSITIVE_PORTS: 'ssh' };

  beforeEach(async () => {
    await useStepEnvironment();
    for (const [name, value] of Object.entries(malformed)) vi.stubEnv(name, value);
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it.each(forensicWorkflow)('does not stop %s from starting', (fn) => {
    expect(() => stepContext(sliceOf(fn))).not.toThrow();
  });

  it.each(['block-ip', 'expire-blocks'])('stops %s, naming AUTO_BLOCK_TTL', (fn) => {
    expect(() => stepContext(sliceOf(fn))).toThrow(ConfigurationError);
    expect(() => stepContext(sliceOf(fn))).toThrow(/AUTO_BLOCK_TTL: /);
  });

  it('stops policy-violation, naming POLICY_SENSITIVE_PORTS and nothing it does not read', () => {
    expect(() => stepContext(sliceOf('policy-violation'))).toThrow(/POLICY_SENSITIVE_PORTS: /);
    expect(() => stepContext(sliceOf('policy-violation'))).not.toThrow(/AUTO_BLOCK_TTL/);
  });

  it('lets unblock-ip start, so that a person can always take a block out', () => {
    expect(() => stepContext(sliceOf('unblock-ip'))).not.toThrow();
  });

  describe('through the handlers', () => {
    const ddb = mockClient(DynamoDBDocumentClient);
    const s3 = mockClient(S3Client);
    afterEach(() => {
      ddb.reset();
      s3.reset();
    });

    it('leaves intake-finding judging its trigger', async () => {
      const { handler } = await import('../../../functions/forensics/intake-finding/handler.js');

      const result = await handler({ event: null }, lambdaContext);

      expect(result.intake).toMatchObject({
        decision: 'rejected',
        reason: expect.stringMatching(/^MALFORMED/),
      });
    });

    it('fails block-ip with ConfigurationError before any AWS call', async () => {
      const { handler } = await import('../../../functions/playbooks/block-ip/handler.js');
      const request = {
        cidr: '203.0.113.0/24',
        vpcId: 'vpc-0a1b2c3d4e5f60718',
        reason: 'scanner',
        requestedBy: 'alice',
      };

      await expect(handler(request, lambdaContext)).rejects.toMatchObject({
        name: 'ConfigurationError',
        message: expect.stringContaining('AUTO_BLOCK_TTL: '),
      });
      expect(ddb.calls()).toHaveLength(0);
    });

    it('fails expire-blocks with ConfigurationError on its schedule', async () => {
      const { handler } = await import('../../../functions/playbooks/expire-blocks/handler.js');
      const scheduled = { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} };

      await expect(handler(scheduled, lambdaContext)).rejects.toMatchObject({
        name: 'ConfigurationError',
        message: expect.stringContaining('AUTO_BLOCK_TTL: '),
      });
      expect(ddb.calls()).toHaveLength(0);
    });
  });
});

describe('a malformed response policy', () => {
  beforeEach(async () => {
    await useStepEnvironment();
    vi.stubEnv(
      'RESPONSE_POLICY',
      '{"default":"contain","rules":[{"name":"db","response":"approve","tags":{"Tier":["db"]}}]}',
    );
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('stops intake-finding, naming RESPONSE_POLICY, the rule and the tag key', () => {
    expect(() => stepContext(sliceOf('intake-finding'))).toThrow(ConfigurationError);
    expect(() => stepContext(sliceOf('intake-finding'))).toThrow(
      /RESPONSE_POLICY: the policy is refused: rules\.0\.tags: rule "db" reads the tag "Tier", which is not in tagKeys/,
    );
  });

  it.each(forensicWorkflow.filter((fn) => fn !== 'intake-finding'))('does not stop %s', (fn) => {
    expect(() => stepContext(sliceOf(fn))).not.toThrow();
  });
});

describe('the response policy setting', () => {
  it('contains everything when unset or empty', () => {
    for (const env of [stepEnvironment, { ...stepEnvironment, RESPONSE_POLICY: ' ' }]) {
      expect(loadConfig(configSlices.intake, env).RESPONSE_POLICY).toEqual({
        default: 'contain',
        tagKeys: [],
        rules: [],
      });
    }
  });

  it('reads a policy document into its rules', () => {
    const document = {
      default: 'approve',
      rules: [{ name: 'sandbox', response: 'contain', accounts: ['123456789012'] }],
    };

    const cfg = loadConfig(configSlices.intake, {
      ...stepEnvironment,
      RESPONSE_POLICY: JSON.stringify(document),
    });

    expect(cfg.RESPONSE_POLICY).toEqual({ ...document, tagKeys: [] });
  });

  it('refuses text that is not JSON, naming the setting', () => {
    expect(() => loadConfig(configSlices.intake, { ...stepEnvironment, RESPONSE_POLICY: 'contain' })).toThrow(
      /RESPONSE_POLICY: the policy is not JSON/,
    );
  });
});

describe('loadConfig', () => {
  it('fails loudly on a missing setting of the slice, naming it and whose it is', () => {
    const { MEMORY_DOCUMENT_LINUX: _, ...env } = stepEnvironment;

    expect(() => loadConfig(configSlices.memory, env)).toThrow(
      /the settings of memory\): MEMORY_DOCUMENT_LINUX: /,
    );
  });

  it('fails every slice on a missing common setting', () => {
    const { CASES_TABLE: _, ...env } = stepEnvironment;

    for (const slice of Object.values(configSlices)) {
      expect(() => loadConfig(slice, env)).toThrow(/CASES_TABLE: /);
    }
  });

  it('returns exactly the slice’s settings, parsed', () => {
    const cfg = loadConfig(configSlices.snapshots, { ...stepEnvironment, AUTO_BLOCK_TTL: 'banana' });

    expect(Object.keys(cfg).sort()).toEqual([...configSlices.snapshots.keys].sort());
    expect(cfg.SNAPSHOT_BUDGET_SECONDS).toBe(60);
  });
});
