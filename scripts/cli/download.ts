import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { EvidenceIntegrityError } from '../../functions/core/errors.js';
import { MiB } from '../../functions/core/memory.js';
import { CliError } from './errors.js';
import { manifestName, mapLimit, nameInCase, type SealedCase, signatureName } from './evidence.js';
import { type RecordedFile, stampFile, writeGetRecord } from './get-record.js';
import { InOrderHash } from './in-order-hash.js';

/** One object to fetch: where it is, and what the manifest says it must be. */
export interface DownloadTarget {
  name: string;
  key: string;
  versionId: string;
  bytes: number;
  sha256: string;
}

export interface DownloadOptions {
  /**
   * Bytes per ranged GET: large objects come in parts, a few at a time, and resume by part. Absent:
   * the part size an interrupted download of the file recorded, else `partSizeFor` its size.
   */
  partSize?: number;
  partConcurrency?: number;
  fileConcurrency?: number;
  /** Bytes newly on disk (resumed parts are reported once, at the start). */
  onProgress?: (bytes: number) => void;
  /** Bytes of later parts held in memory until their turn to be hashed (default 64 MiB). */
  holdBytes?: number;
  /**
   * Where to keep the record of what this download hashed (see get-record.ts), which `verify --dir`
   * trusts for a file unchanged since; absent, no record is written.
   */
  record?: { folder: string; now: () => Date; onError?: (error: unknown) => void };
  /** Called after each part is stored and recorded: where a test injects an interruption. */
  onPart?: (target: DownloadTarget, index: number) => void | Promise<void>;
}

export interface DownloadOutcome {
  name: string;
  path: string;
  bytes: number;
  sha256: string;
  /**
   * `failed`: what S3 served did not match the manifest, and was not kept. `conflict`: a file of that
   * name was already in the folder with other content, and was left alone (nothing was downloaded).
   */
  status: 'downloaded' | 'resumed' | 'already-complete' | 'failed' | 'conflict';
  /** For `failed` and `conflict`: why the file was not called complete. */
  reason?: string;
}

const isComplete = (o: DownloadOutcome) =>
  o.status === 'downloaded' || o.status === 'resumed' || o.status === 'already-complete';

/** What `evidence get` writes beside a file while it downloads it, and removes once it is complete. */
export const partSuffixes = ['.part', '.part.json', '.part.json.tmp'] as const;
/** Held while one `evidence get` writes into a folder: a second one into the same folder is refused. */
export const folderLockName = '.cordon-get.lock';

/** A file `evidence get` leaves only while it runs (or after it was interrupted), not evidence. */
export function isDownloadLeftover(name: string, listed: ReadonlySet<string>): boolean {
  if (name === folderLockName) return true;
  const suffix = partSuffixes.find((s) => name.endsWith(s));
  return suffix !== undefined && listed.has(name.slice(0, -suffix.length));
}

export class FolderInUseError extends CliError {}

const processAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, owned by someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Takes the folder for one download: `.cordon-get.lock`, created exclusively, holding this process's
 * id. Two downloads into one folder would write the same `.part` files and rename them from under each
 * other; the second is refused instead. A lock whose process is gone (a download killed hard) is taken
 * over. Returns the release, which removes the lock.
 */
export async function lockFolder(dir: string, pid = process.pid): Promise<() => Promise<void>> {
  const path = pathInside(dir, folderLockName);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(`${JSON.stringify({ pid, since: new Date().toISOString() })}\n`);
      await handle.close();
      return async () => {
        await rm(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = await readFile(path, 'utf8')
        .then((text) => Number((JSON.parse(text) as { pid?: unknown }).pid))
        .catch(() => Number.NaN);
      if (Number.isInteger(holder) && holder > 0 && processAlive(holder)) {
        throw new FolderInUseError(
          `Another cordon evidence get (process ${holder}) is writing into ${resolve(dir)}.`,
          'Wait for it to finish (it resumes the same files), or choose another folder with --out.',
        );
      }
      // Left by a download that was killed: nobody holds the folder.
      await rm(path, { force: true });
    }
  }
  throw new FolderInUseError(`Could not take ${path}: another download keeps creating it.`);
}

export const defaultPartSize = 8 * MiB;
/** From this size on, an object comes in parts of `largePartSize`. */
export const largeObjectBytes = 512 * MiB;
/**
 * Parts of a large object (a memory image): half the ranged GETs of the default, each a request S3
 * (and the client) pays for whatever its size. Three such parts waiting for the one before them still
 * fit in the 64 MiB held in memory (`defaultHoldBytes`), so the file is still not read back.
 */
export const largePartSize = 16 * MiB;

/** The part size of a download not given one: the default, or `largePartSize` for a large object. */
export function partSizeFor(bytes: number): number {
  return bytes >= largeObjectBytes ? largePartSize : defaultPartSize;
}

const progressSchema = z.object({
  schema: z.literal('cordon.download/1'),
  key: z.string(),
  versionId: z.string(),
  bytes: z.number(),
  sha256: z.string(),
  partSize: z.number(),
  done: z.array(z.number().int().min(0)),
});
type Progress = z.infer<typeof progressSchema>;

/** The file's place under `dir`, refusing anything that would land outside it. */
export function pathInside(dir: string, name: string): string {
  const root = resolve(dir);
  const path = resolve(root, name);
  const rel = relative(root, path);
  if (!rel || rel.startsWith('..') || isAbsolute(rel))
    throw new CliError(`Refusing to write ${name} outside ${root}.`);
  return path;
}

export async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).byteLength;
  }
  return { sha256: hash.digest('hex'), bytes };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** The progress an earlier run recorded for this very object, whatever its part size. */
async function readProgress(path: string, target: DownloadTarget): Promise<Progress | undefined> {
  try {
    const parsed = progressSchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
    if (!parsed.success) return undefined;
    const p = parsed.data;
    const same =
      p.key === target.key &&
      p.versionId === target.versionId &&
      p.bytes === target.bytes &&
      p.sha256 === target.sha256 &&
      p.partSize > 0;
    return same ? p : undefined;
  } catch {
    return undefined;
  }
}

async function writeAtomically(path: string, body: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, body);
  await rename(tmp, path);
}

/** Where a file would go if its name is already taken by different content: never overwrite evidence. */
async function alreadyThere(
  path: string,
  target: DownloadTarget,
): Promise<'complete' | 'different' | 'absent'> {
  if (!(await exists(path))) return 'absent';
  const found = await hashFile(path);
  return found.sha256 === target.sha256 && found.bytes === target.bytes ? 'complete' : 'different';
}

/** Bytes of later parts held in memory, waiting for the part before them to be hashed. */
export const defaultHoldBytes = 64 * MiB;
/** Bytes gathered before one write: a write per network chunk (often 16-64 KiB) costs more than the copy. */
const writeBatchBytes = MiB;
const readBackChunk = MiB;

/**
 * Writes one part's bytes at their place in the file, in batches, one write in flight while the next
 * batch gathers: the network and the disk work at the same time.
 */
class PartWriter {
  private batch: Uint8Array[] = [];
  private batchBytes = 0;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: FileHandle,
    private position: number,
  ) {}

  /** Resolves once the bytes are handed on, not written: `flush` waits for the disk. */
  async write(chunk: Uint8Array): Promise<void> {
    this.batch.push(chunk);
    this.batchBytes += chunk.byteLength;
    if (this.batchBytes >= writeBatchBytes) await this.send();
  }

  async flush(): Promise<void> {
    await this.send();
    await this.writing;
  }

  /** After a failure: waits for the write in flight, whatever its outcome. */
  async settle(): Promise<void> {
    await this.writing.catch(() => undefined);
  }

  private async send(): Promise<void> {
    // At most one write in flight: wait for the previous one (and surface its failure) first.
    await this.writing;
    if (this.batchBytes === 0) return;
    const batch = this.batch;
    const at = this.position;
    this.position += this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    this.writing = writeFully(this.file, batch, at);
  }
}

/** `writev` at `position`, again for whatever a short write left. */
async function writeFully(file: FileHandle, chunks: Uint8Array[], position: number): Promise<void> {
  let rest = chunks;
  let at = position;
  while (rest.length > 0) {
    const { bytesWritten } = await file.writev(rest, at);
    at += bytesWritten;
    let skip = bytesWritten;
    const left: Uint8Array[] = [];
    for (const chunk of rest) {
      if (skip >= chunk.byteLength) skip -= chunk.byteLength;
      else {
        left.push(skip > 0 ? chunk.subarray(skip) : chunk);
        skip = 0;
      }
    }
    rest = left;
  }
}

/** The bytes of part `index` as they are on disk, in reads of a MiB. */
async function* readRange(
  file: FileHandle,
  start: number,
  length: number,
  name: string,
  index: number,
): AsyncIterable<Uint8Array> {
  const buffer = Buffer.alloc(Math.min(readBackChunk, Math.max(length, 1)));
  let done = 0;
  while (done < length) {
    const want = Math.min(buffer.byteLength, length - done);
    const { bytesRead } = await file.read(buffer, 0, want, start + done);
    if (bytesRead === 0) throw new EvidenceIntegrityError(`${name}: part ${index} is short on disk`);
    // Hashed before the next read reuses the buffer.
    yield buffer.subarray(0, bytesRead);
    done += bytesRead;
  }
}

/**
 * Downloads one object version into `<dir>/<name>`. Parts go into `<name>.part` at their offsets, with
 * `<name>.part.json` recording the parts already stored, so an interrupted download resumes from
 * there. The file is hashed while it downloads, in order, from the bytes as they arrive (parts come in
 * parallel; see `InOrderHash`): it is not read back, except the parts an earlier run stored and any
 * that could not wait in memory for their turn. It gets its final name only if its SHA-256 and size
 * are the manifest's. A mismatch deletes the partial file and is reported as `failed`; an
 * interruption (a network error, Ctrl-C) leaves it to resume.
 */
export async function downloadArtifact(
  s3: S3Client,
  bucket: string,
  target: DownloadTarget,
  dir: string,
  options: DownloadOptions = {},
): Promise<DownloadOutcome> {
  const finalPath = pathInside(dir, target.name);
  const base = { name: target.name, path: finalPath, bytes: target.bytes, sha256: target.sha256 };
  const present = await alreadyThere(finalPath, target);
  if (present === 'complete') {
    options.onProgress?.(target.bytes);
    return { ...base, status: 'already-complete' };
  }
  if (present === 'different') {
    return {
      ...base,
      status: 'conflict',
      reason: `${finalPath} was already there with other content; it was left as it is (move it away and run again)`,
    };
  }
  await mkdir(dirname(finalPath), { recursive: true });
  const partPath = `${finalPath}.part`;
  const progressPath = `${finalPath}.part.json`;
  const recorded = await readProgress(progressPath, target);
  // Not given a part size, a download resumes with the one it started with (an earlier version's
  // default included); given one, it resumes only with that one.
  const partSize = options.partSize ?? recorded?.partSize ?? partSizeFor(target.bytes);
  const parts = target.bytes === 0 ? 0 : Math.ceil(target.bytes / partSize);

  let progress = recorded?.partSize === partSize ? recorded : undefined;
  if (
    progress &&
    (await stat(partPath).then(
      (s) => s.size,
      () => -1,
    )) !== target.bytes
  )
    progress = undefined;
  const resumed = (progress?.done.length ?? 0) > 0;
  const done = new Set((progress?.done ?? []).filter((i) => i < parts));
  if (!progress) {
    const fresh = await open(partPath, 'w');
    await fresh.truncate(target.bytes);
    await fresh.close();
  }
  const state: Progress = {
    schema: 'cordon.download/1',
    key: target.key,
    versionId: target.versionId,
    bytes: target.bytes,
    sha256: target.sha256,
    partSize,
    done: [...done],
  };
  let saving = Promise.resolve();
  const save = () => {
    const snapshot = JSON.stringify({ ...state, done: [...done].sort((a, b) => a - b) });
    saving = saving.then(() => writeAtomically(progressPath, snapshot));
    return saving;
  };
  await save();

  const partLength = (i: number) => Math.min(partSize, target.bytes - i * partSize);
  for (const i of done) options.onProgress?.(partLength(i));

  const file: FileHandle = await open(partPath, 'r+');
  // Each byte is hashed once, from memory, as it arrives; only parts stored by an earlier run (or that
  // did not fit in memory while waiting their turn) are read back from disk.
  const hash = new InOrderHash(parts, options.holdBytes ?? defaultHoldBytes, (i) =>
    readRange(file, i * partSize, partLength(i), target.name, i),
  );
  for (const i of done) hash.onDisk(i);
  let digest: string;
  try {
    const todo = Array.from({ length: parts }, (_, i) => i).filter((i) => !done.has(i));
    await mapLimit(todo, options.partConcurrency ?? 4, async (i) => {
      const start = i * partSize;
      const end = start + partLength(i) - 1;
      const out = await s3.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: target.key,
          VersionId: target.versionId,
          Range: `bytes=${start}-${end}`,
        }),
      );
      const total = /\/(\d+)$/.exec(out.ContentRange ?? '')?.[1];
      if (total !== undefined && Number(total) !== target.bytes) {
        throw new EvidenceIntegrityError(
          `${target.name}: S3 holds ${total} bytes, the manifest says ${target.bytes}`,
        );
      }
      const writer = new PartWriter(file, start);
      let offset = start;
      try {
        for await (const chunk of out.Body as AsyncIterable<Uint8Array>) {
          if (offset + chunk.byteLength > end + 1) {
            throw new EvidenceIntegrityError(`${target.name}: part ${i} is longer than requested`);
          }
          hash.add(i, chunk);
          await writer.write(chunk);
          offset += chunk.byteLength;
          // As the bytes arrive, not per part: a part of a memory image can take a while.
          options.onProgress?.(chunk.byteLength);
        }
        await writer.flush();
      } catch (error) {
        await writer.settle();
        throw error;
      }
      if (offset !== end + 1) {
        throw new EvidenceIntegrityError(
          `${target.name}: part ${i} ended after ${offset - start} of ${end - start + 1} bytes`,
        );
      }
      hash.complete(i);
      done.add(i);
      await save();
      await options.onPart?.(target, i);
    });
    digest = await hash.digest();
  } catch (error) {
    await hash.settle();
    await saving.catch(() => undefined);
    await file.close();
    // The object is not what the manifest says: resuming cannot fix that, so nothing is kept.
    if (!(error instanceof EvidenceIntegrityError)) throw error;
    await rm(partPath, { force: true });
    await rm(progressPath, { force: true });
    return { ...base, status: 'failed', reason: error.message };
  }
  await saving.catch(() => undefined);
  await file.close();

  const size = (await stat(partPath)).size;
  if (digest !== target.sha256 || size !== target.bytes) {
    await rm(partPath, { force: true });
    await rm(progressPath, { force: true });
    return {
      ...base,
      status: 'failed',
      reason:
        size !== target.bytes
          ? `downloaded ${size} bytes, the manifest says ${target.bytes}`
          : `SHA-256 ${digest} differs from the manifest's ${target.sha256}`,
    };
  }
  await rename(partPath, finalPath);
  await rm(progressPath, { force: true });
  return { ...base, status: resumed ? 'resumed' : 'downloaded' };
}

/** The objects a case download fetches: every artifact the manifest lists. */
export function targetsOf(sealed: SealedCase): DownloadTarget[] {
  return sealed.manifest.artifacts.map((a) => ({
    name: nameInCase(sealed.caseId, a.key),
    key: a.key,
    versionId: a.versionId,
    bytes: a.bytes,
    sha256: a.sha256,
  }));
}

/**
 * Downloads a sealed case into `dir`: `manifest.json` and `manifest.sig` exactly as read (the signed
 * version), then every artifact, a few at a time, each checked against the manifest.
 */
export async function downloadCase(
  s3: S3Client,
  sealed: SealedCase,
  dir: string,
  options: DownloadOptions = {},
): Promise<DownloadOutcome[]> {
  await mkdir(resolve(dir), { recursive: true });
  const release = await lockFolder(dir);
  try {
    return await downloadInto(s3, sealed, dir, options);
  } finally {
    await release();
  }
}

async function downloadInto(
  s3: S3Client,
  sealed: SealedCase,
  dir: string,
  options: DownloadOptions,
): Promise<DownloadOutcome[]> {
  // Written as read, with the hash of the bytes themselves: `evidence verify --dir` judges them.
  const documents: [string, Buffer][] = [
    [manifestName, sealed.manifestBytes],
    [signatureName, sealed.signatureBytes],
  ];
  const outcomes: DownloadOutcome[] = [];
  for (const [name, body] of documents) {
    const sha = createHash('sha256').update(body).digest('hex');
    const path = pathInside(dir, name);
    const target = { name, key: '', versionId: '', bytes: body.byteLength, sha256: sha };
    const present = await alreadyThere(path, target);
    if (present === 'different') {
      outcomes.push({
        name,
        path,
        bytes: body.byteLength,
        sha256: sha,
        status: 'conflict',
        reason: `${path} was already there with other content; it was left as it is`,
      });
      continue;
    }
    if (present === 'absent') await writeAtomically(path, body);
    options.onProgress?.(body.byteLength);
    outcomes.push({
      name,
      path,
      bytes: body.byteLength,
      sha256: sha,
      status: present === 'complete' ? 'already-complete' : 'downloaded',
    });
  }
  const recorded: Record<string, RecordedFile> = {};
  const artifacts = await mapLimit(targetsOf(sealed), options.fileConcurrency ?? 2, async (t) => {
    const outcome = await downloadArtifact(s3, sealed.bucket, t, dir, options);
    // Stamped as soon as it has its name: the record vouches for the file from this moment on.
    if (options.record && isComplete(outcome)) {
      recorded[t.name] = { sha256: t.sha256, bytes: t.bytes, stamp: await stampFile(outcome.path) };
    }
    return outcome;
  });
  if (options.record) {
    try {
      await writeGetRecord(options.record.folder, dir, sealed.caseId, recorded, options.record.now());
    } catch (error) {
      // Without a record, verify --dir reads every file again: slower, never wrong.
      options.record.onError?.(error);
    }
  }
  return [...artifacts, ...outcomes];
}
