/**
 * What `cordon evidence get` records of each file it hashed, so that `evidence verify --dir` right
 * after it need not read the file again: the SHA-256 of the bytes get received and wrote, and the
 * file's identity and times as they stood once it was complete.
 *
 * A write to the file changes its modification and change times (and a replacement its inode); a
 * process can set the modification time back (`touch -d`), but not the change time, which the kernel
 * sets on every change, including that one. So a file whose inode, size, modification and change times
 * are still the recorded ones has not been written to through the file system since, unless the clock
 * was set back or the disk written beneath the file system. The record cannot vouch for more than that:
 * not for a change made while get was still writing the file, nor on a file system that keeps no change
 * time (FAT, exFAT), nor against whoever can rewrite the record itself. It lives in the investigator's
 * own state folder (mode 0700), never in the evidence folder: someone who can write only the evidence
 * (a shared drive, a copy, a disk moved between machines) cannot forge it, and a copy of the folder
 * never inherits it (new inodes, new change times).
 */
import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { mkdir, readFile, realpath, rename, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';

/** A file's identity, size and times (nanoseconds), as `stat` gives them, in decimal. */
export interface FileStamp {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
}

const stampSchema = z.object({
  dev: z.string(),
  ino: z.string(),
  size: z.string(),
  mtimeNs: z.string(),
  ctimeNs: z.string(),
});

const recordSchema = z.object({
  schema: z.literal('cordon.get-record/1'),
  /** The folder, as its real path: the record of one folder is never read for another. */
  dir: z.string(),
  caseId: z.string(),
  writtenAt: z.string(),
  files: z.record(
    z.string(),
    z.object({
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      bytes: z.number().int().min(0),
      stamp: stampSchema,
    }),
  ),
});
export type GetRecord = z.infer<typeof recordSchema>;
export type RecordedFile = GetRecord['files'][string];

export function stampOf(s: BigIntStats): FileStamp {
  return {
    dev: String(s.dev),
    ino: String(s.ino),
    size: String(s.size),
    mtimeNs: String(s.mtimeNs),
    ctimeNs: String(s.ctimeNs),
  };
}

export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return (
    a.dev === b.dev &&
    a.ino === b.ino &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs
  );
}

/** The stamp of the file at `path` now: of its target, for a symbolic link, as a hash of it reads it. */
export async function stampFile(path: string): Promise<FileStamp> {
  return stampOf(await stat(path, { bigint: true }));
}

/**
 * Where the records are kept: `$XDG_STATE_HOME/cordon/get-records`, else `%LOCALAPPDATA%\cordon\...`
 * on Windows, else `~/.local/state/cordon/get-records`.
 */
export function recordFolder(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  const xdg = env.XDG_STATE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'cordon', 'get-records');
  if (platform === 'win32' && env.LOCALAPPDATA) return join(env.LOCALAPPDATA, 'cordon', 'get-records');
  return join(homedir(), '.local', 'state', 'cordon', 'get-records');
}

async function recordPath(records: string, dir: string): Promise<{ path: string; real: string }> {
  const real = await realpath(dir);
  const name = createHash('sha256').update(real).digest('hex').slice(0, 32);
  return { path: join(records, `${name}.json`), real };
}

/** Writes the record of `dir` (replacing any earlier one): readable and writable by this user only. */
export async function writeGetRecord(
  records: string,
  dir: string,
  caseId: string,
  files: Record<string, RecordedFile>,
  now: Date,
): Promise<void> {
  await mkdir(records, { recursive: true, mode: 0o700 });
  const { path, real } = await recordPath(records, dir);
  const record: GetRecord = {
    schema: 'cordon.get-record/1',
    dir: real,
    caseId,
    writtenAt: now.toISOString(),
    files,
  };
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

/**
 * The record `evidence get` left for `dir`, or undefined: none, unreadable, of another folder or case,
 * or one that another user could have written (not owned by this user, or writable by others).
 */
export async function readGetRecord(
  records: string,
  dir: string,
  caseId: string,
): Promise<GetRecord | undefined> {
  try {
    const { path, real } = await recordPath(records, dir);
    const s = await stat(path);
    const uid = process.getuid?.();
    if (uid !== undefined && (s.uid !== uid || (s.mode & 0o022) !== 0)) return undefined;
    const parsed = recordSchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
    if (!parsed.success || parsed.data.dir !== real || parsed.data.caseId !== caseId) return undefined;
    return parsed.data;
  } catch {
    return undefined;
  }
}
