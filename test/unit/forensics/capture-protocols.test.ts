import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const script = readFileSync(resolve(import.meta.dirname, '../../../capture/linux/capture-memory.sh'), 'utf8');
const definition = /^protocols_for\(\) \{[\s\S]*?^\}$/m.exec(script)?.[0];

/** What the capture script lets curl speak to `url`, from its own definition run under bash. */
function protocolsFor(url: string): string {
  const run = spawnSync('bash', ['-c', `${definition}\nprotocols_for "$1"`, 'bash', url], {
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(run.stderr);
  return run.stdout;
}

describe('the Linux capture script’s curl protocols', () => {
  it('is defined once in the script, and every curl call uses it', () => {
    expect(definition).toBeDefined();
    const curls = script.split('\n').filter((line) => /^\s*(status=\$\()?curl /.test(line));
    expect(curls.length).toBe(3);
    for (const line of curls) expect(line).toContain('--proto "$(protocols_for "$');
  });

  it.each([
    'https://cordon-evidence-prod.s3.eu-west-1.amazonaws.com/cases/x/memory/image.lime?partNumber=1',
    'https://s3.us-east-1.amazonaws.com/cordon-tools/tools/avml',
  ])('allows HTTPS only to %s', (url) => {
    expect(protocolsFor(url)).toBe('=https');
  });

  it.each([
    'http://cordon-evidence-prod.s3.amazonaws.com/cases/x/memory/image.lime',
    'http://10.0.0.5:4566/bucket/key',
    'http://127.0.0.1.attacker.example/key',
    'http://localhost.attacker.example:80/key',
    'http://169.254.169.254/latest/meta-data/',
  ])('refuses plain HTTP to %s', (url) => {
    expect(protocolsFor(url)).toBe('=https');
  });

  it.each(['http://127.0.0.1:5000/bucket/key', 'http://localhost/bucket/key'])(
    'allows plain HTTP to this host’s loopback (%s), where a local emulator listens',
    (url) => {
      expect(protocolsFor(url)).toBe('=https,http');
    },
  );
});
