import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { changeKeys, containmentKeys } from '../../../functions/core/containment.js';
import { containmentActions } from '../../../functions/core/containment-actions.js';

const root = resolve(import.meta.dirname, '../../..');
const serverless = readFileSync(resolve(root, 'serverless.yml'), 'utf8');

describe('the containment actions', () => {
  it('cover every key a containment step saves its changes under, each once', () => {
    const { release: _release, ...containment } = changeKeys;

    expect(containmentActions.map((a) => a.key).sort()).toEqual(Object.values(containment).sort());
  });

  it('are the keys by which a later case finds an earlier one that recorded containment', () => {
    expect([...containmentKeys].sort()).toEqual(containmentActions.map((a) => a.key).sort());
  });

  it('are listed in the order Release restores them: credentials, network, protection', () => {
    expect(containmentActions.map((a) => a.key)).toEqual([
      changeKeys.revoke,
      changeKeys.isolate,
      changeKeys.protect,
    ]);
  });

  it.each(containmentActions.map((a) => [a.step, a] as const))(
    'name a step, %s, that serverless.yml packages from its own folder with its own role file',
    (step, action) => {
      expect(serverless).toContain(
        `\n  ${step}:\n    handler: functions/forensics/${step}/handler.handler\n`,
      );
      expect(existsSync(resolve(root, `resources/roles/${step}.yml`))).toBe(true);
      expect(action.description.length).toBeGreaterThan(0);
    },
  );

  it.each(containmentActions.map((a) => [a.key, a] as const))(
    'read %s from a case record, and nothing from a record whose entry does not parse',
    (key, action) => {
      expect(action.read({ changes: {} })).toBeUndefined();
      expect(action.read(undefined)).toBeUndefined();
      expect(action.read({ changes: { [key]: { unexpected: true } } })).toBeUndefined();
    },
  );
});
