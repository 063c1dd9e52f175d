import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCfnYaml, loadServerlessConfig, repoRoot } from '../support/template-model.js';

const deployDoc = readFileSync(resolve(repoRoot, 'docs/deploy.md'), 'utf8');

/** The first-column names of the markdown table that follows a heading's text. */
function tableNames(afterHeading: string): string[] {
  const start = deployDoc.indexOf(afterHeading);
  if (start < 0) throw new Error(`docs/deploy.md has no section ${afterHeading}`);
  const rows = deployDoc.slice(start).split('\n');
  const first = rows.findIndex((line) => line.startsWith('| '));
  const fromTable = rows.slice(first);
  const end = fromTable.findIndex((line) => !line.startsWith('|'));
  const table = end < 0 ? fromTable : fromTable.slice(0, end);
  return table
    .map((line) => /^\| `([\w-]+)` \|/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);
}

describe('docs/deploy.md', () => {
  it('documents every serverless.yml param, and no param that does not exist', () => {
    const params = new Set(
      Object.values(loadServerlessConfig().params).flatMap((stage) => Object.keys(stage)),
    );

    expect(new Set(tableNames('## Configuration'))).toEqual(params);
  });

  it('documents every parameter of the member-account template, and no other', () => {
    const declared = (loadCfnYaml('resources/member-account.yml') as unknown as { Parameters: object })
      .Parameters;

    expect(new Set(tableNames('## Member accounts'))).toEqual(new Set(Object.keys(declared)));
  });
});
