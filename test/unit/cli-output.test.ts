import { describe, expect, it } from 'vitest';
import { formatBytes, jsonDocument, safe, table } from '../../scripts/cli/output.js';

describe('safe', () => {
  it('shows the ANSI escapes and newlines that a tag or finding field could carry as visible escapes', () => {
    expect(safe('web-1\u001b[2J\u001b[31mOWNED\nnext line')).toBe(
      'web-1\\u001b[2J\\u001b[31mOWNED\\nnext line',
    );
  });

  it('shows C1 controls and bidirectional overrides as visible escapes', () => {
    expect(safe('a\u009b31mb\u202ecod.exe')).toBe('a\\u009b31mb\\u202ecod.exe');
  });

  it('caps the length', () => {
    expect(safe('x'.repeat(50), 10)).toBe(`${'x'.repeat(9)}…`);
  });
});

describe('jsonDocument', () => {
  it('escapes C1 controls and line separators that JSON.stringify leaves raw', () => {
    const text = jsonDocument({ name: 'a\u009b\u2028b', esc: '\u001b[0m' });

    expect(text).toContain('"a\\u009b\\u2028b"');
    expect(text).toContain('"\\u001b[0m"');
    expect(JSON.parse(text)).toEqual({ name: 'a\u009b\u2028b', esc: '\u001b[0m' });
  });
});

describe('table', () => {
  it('pads columns to the widest cell and sanitises every cell', () => {
    expect(
      table(
        ['A', 'BB'],
        [
          ['one', 'x\u001b[1m'],
          ['2', ''],
        ],
      ),
    ).toBe('A    BB\none  x\\u001b[1m\n2\n');
  });
});

describe('formatBytes', () => {
  it('uses binary units', () => {
    expect([formatBytes(512), formatBytes(8 * 1024 * 1024), formatBytes(1536)]).toEqual([
      '512 B',
      '8.0 MiB',
      '1.5 KiB',
    ]);
  });
});
