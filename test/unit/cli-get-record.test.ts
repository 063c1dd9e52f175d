import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rename, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  readGetRecord,
  recordFolder,
  sameStamp,
  stampFile,
  writeGetRecord,
} from '../../scripts/cli/get-record.js';

const caseId = '20261127T201003Z-i-0123456789abcdef0-3fa9';
const now = new Date('2026-11-27T21:00:00Z');
const entry = (stamp: Awaited<ReturnType<typeof stampFile>>) => ({
  sha256: 'a'.repeat(64),
  bytes: 5,
  stamp,
});

/** `touch -r`: gives `path` the times of `reference`, to the nanosecond, as a tamperer would. */
function touchLike(reference: string, path: string) {
  const run = spawnSync('touch', ['-r', reference, path]);
  if (run.status !== 0) throw new Error(`touch -r failed: ${run.stderr}`);
}

let work: string;
let times: string;
/** Puts back the times `triage.json` had when the test began. */
const putTimesBack = (path: string) => touchLike(times, path);
let records: string;
let dir: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'cordon-record-'));
  records = join(work, 'state', 'cordon', 'get-records');
  dir = join(work, 'case');
  await mkdir(dir);
  await writeFile(join(dir, 'triage.json'), 'hello');
  times = join(work, 'times');
  await writeFile(times, '');
  touchLike(join(dir, 'triage.json'), times);
});

describe('where the records live', () => {
  it("is the user's state folder, never the evidence folder", () => {
    expect(recordFolder({ XDG_STATE_HOME: '/home/ana/.state' }, 'linux')).toBe(
      '/home/ana/.state/cordon/get-records',
    );
    expect(recordFolder({}, 'linux')).toBe(join(homedir(), '.local', 'state', 'cordon', 'get-records'));
    expect(recordFolder({ XDG_STATE_HOME: 'relative/state' }, 'linux')).toBe(
      join(homedir(), '.local', 'state', 'cordon', 'get-records'),
    );
    expect(recordFolder({ LOCALAPPDATA: 'C:\\Users\\ana\\AppData\\Local' }, 'win32')).toBe(
      join('C:\\Users\\ana\\AppData\\Local', 'cordon', 'get-records'),
    );
  });
});

describe('a get record', () => {
  it('is read back for the folder and case it was written for, and nothing is written into the folder', async () => {
    const stamp = await stampFile(join(dir, 'triage.json'));

    await writeGetRecord(records, dir, caseId, { 'triage.json': entry(stamp) }, now);

    expect(await readGetRecord(records, dir, caseId)).toMatchObject({
      caseId,
      writtenAt: now.toISOString(),
      files: { 'triage.json': { sha256: 'a'.repeat(64), bytes: 5, stamp } },
    });
    expect(await readdir(dir)).toEqual(['triage.json']);
  });

  it('is not read for another folder, nor for another case in the same folder', async () => {
    const other = join(work, 'other');
    await mkdir(other);
    await writeGetRecord(records, dir, caseId, {}, now);

    expect(await readGetRecord(records, other, caseId)).toBeUndefined();
    expect(await readGetRecord(records, dir, `${caseId.slice(0, -4)}beef`)).toBeUndefined();
  });

  it('is ignored when others could have written it', async () => {
    await writeGetRecord(records, dir, caseId, {}, now);
    const [name] = await readdir(records);

    await chmod(join(records, name as string), 0o666);

    expect(await readGetRecord(records, dir, caseId)).toBeUndefined();
  });

  it('is ignored when it is not a record', async () => {
    await writeGetRecord(records, dir, caseId, {}, now);
    const [name] = await readdir(records);

    await writeFile(join(records, name as string), '{"schema":"cordon.get-record/1"}', { mode: 0o600 });

    expect(await readGetRecord(records, dir, caseId)).toBeUndefined();
  });
});

describe("a file's stamp", () => {
  it('changes when the file is written, even with its size and modification time put back', async () => {
    const path = join(dir, 'triage.json');
    const before = await stampFile(path);
    await new Promise((r) => setTimeout(r, 20));

    await writeFile(path, 'HELLO');
    putTimesBack(path);

    const after = await stampFile(path);
    expect(after.size).toBe(before.size);
    expect(after.mtimeNs).toBe(before.mtimeNs);
    expect(after.ctimeNs).not.toBe(before.ctimeNs);
    expect(sameStamp(before, after)).toBe(false);
  });

  it('changes when the file is replaced by another of the same size and times', async () => {
    const path = join(dir, 'triage.json');
    const before = await stampFile(path);
    await writeFile(join(dir, 'forged'), 'HELLO');
    touchLike(path, join(dir, 'forged'));

    await rename(join(dir, 'forged'), path);

    expect(sameStamp(before, await stampFile(path))).toBe(false);
  });

  it('stays the same while nobody writes the file', async () => {
    const path = join(dir, 'triage.json');

    expect(sameStamp(await stampFile(path), await stampFile(path))).toBe(true);
  });
});
