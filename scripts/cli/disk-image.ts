import { createHash } from 'node:crypto';
import { type FileHandle, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { type EBSClient, GetSnapshotBlockCommand, ListSnapshotBlocksCommand } from '@aws-sdk/client-ebs';
import { z } from 'zod';
import { EvidenceIntegrityError } from '../../functions/core/errors.js';
import { pathInside } from './download.js';
import { CliError } from './errors.js';
import { mapLimit } from './evidence.js';

/** One snapshot to pull as a raw image: the case's snapshot (or its copy) and the volume it was of. */
export interface ImageTarget {
  snapshotId: string;
  volumeId: string;
}

/** The blocks EBS lists for a snapshot: every other block of the volume reads as zeros. */
export interface BlockList {
  blockSize: number;
  /** VolumeSize (GiB) in bytes: the size of the raw image. */
  volumeBytes: number;
  blocks: { index: number; token: string }[];
}

export interface ImageOptions {
  /** GetSnapshotBlock calls in flight at once. */
  concurrency?: number;
  /** Bytes of listed blocks newly on disk (blocks already there when resuming are reported first). */
  onProgress?: (bytes: number) => void;
  /** Called once the blocks are listed: the image's listed bytes, for a progress line. */
  onListed?: (target: ImageTarget, list: BlockList) => void;
  /** Called after each block is stored and recorded: where a test injects an interruption. */
  onBlock?: (index: number) => void | Promise<void>;
  /**
   * The image's SHA-256 an addendum already records: a finished image already in DIR is then checked
   * against it instead of being refused.
   */
  expectedSha256?: string;
}

export interface ImageOutcome {
  snapshotId: string;
  volumeId: string;
  path: string;
  volumeBytes: number;
  blockSize: number;
  /** Blocks EBS listed (data); the rest of the image is holes. */
  blocks: number;
  sha256: string;
  status: 'downloaded' | 'resumed' | 'already-complete' | 'failed';
  reason?: string;
}

/**
 * The SHA-256 of a whole image, read from disk in large pieces: an image is gigabytes, mostly holes,
 * which the file system reads back as zeros without touching the disk.
 */
async function hashImage(path: string): Promise<{ sha256: string; bytes: number }> {
  const file = await open(path, 'r');
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(16 * 2 ** 20);
  let bytes = 0;
  try {
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.byteLength, bytes);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      bytes += bytesRead;
    }
  } finally {
    await file.close();
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** Block indexes per ListSnapshotBlocks page: the most the API allows. */
const pageSize = 10_000;
const GiB = 2 ** 30;

export const imageName = (snapshotId: string) => `${snapshotId}.raw`;

const progressSchema = z.object({
  schema: z.literal('cordon.disk-image/1'),
  snapshotId: z.string(),
  volumeBytes: z.number().int().positive(),
  blockSize: z.number().int().positive(),
  done: z.array(z.number().int().min(0)),
});
type Progress = z.infer<typeof progressSchema>;

/**
 * Every block EBS lists for the snapshot, page by page, checked: a whole positive block size, each
 * index a whole number inside the volume, no index twice. The SDK types `BlockIndex` as a number,
 * but a JSON answer may carry it as a string; it is read as a number and refused if it is not one.
 */
export async function listSnapshotBlocks(ebs: EBSClient, snapshotId: string): Promise<BlockList> {
  const blocks: { index: number; token: string }[] = [];
  const seen = new Set<number>();
  let blockSize: number | undefined;
  let volumeGiB: number | undefined;
  let token: string | undefined;
  do {
    const page = await ebs.send(
      new ListSnapshotBlocksCommand({
        SnapshotId: snapshotId,
        MaxResults: pageSize,
        ...(token ? { NextToken: token } : {}),
      }),
    );
    blockSize ??= Number(page.BlockSize);
    volumeGiB ??= Number(page.VolumeSize);
    if (
      !Number.isSafeInteger(blockSize) ||
      blockSize <= 0 ||
      !Number.isSafeInteger(volumeGiB) ||
      volumeGiB <= 0
    )
      throw new EvidenceIntegrityError(
        `EBS lists ${snapshotId} with a block size of ${page.BlockSize} bytes and a volume of ${page.VolumeSize} GiB`,
      );
    const count = (volumeGiB * GiB) / blockSize;
    for (const b of page.Blocks ?? []) {
      const index = Number(b.BlockIndex);
      if (!Number.isSafeInteger(index) || index < 0 || index >= count || !b.BlockToken || seen.has(index)) {
        throw new EvidenceIntegrityError(
          `EBS lists a block of ${snapshotId} that cannot be one of its ${count} blocks: index ${JSON.stringify(b.BlockIndex)}`,
        );
      }
      seen.add(index);
      blocks.push({ index, token: b.BlockToken });
    }
    token = page.NextToken || undefined;
  } while (token);
  blocks.sort((a, b) => a.index - b.index);
  return { blockSize: blockSize as number, volumeBytes: (volumeGiB as number) * GiB, blocks };
}

/**
 * One block, checked against the checksum EBS returns with it: SHA-256 of the block's bytes, base64.
 * A block whose bytes do not hash to that checksum, or that is not one block long, is an
 * EvidenceIntegrityError naming the snapshot and the block.
 */
async function fetchBlock(
  ebs: EBSClient,
  snapshotId: string,
  block: { index: number; token: string },
  blockSize: number,
): Promise<Buffer> {
  const out = await ebs.send(
    new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: block.index, BlockToken: block.token }),
  );
  const data = Buffer.from((await out.BlockData?.transformToByteArray()) ?? new Uint8Array());
  if (out.ChecksumAlgorithm !== 'SHA256' || !out.Checksum) {
    throw new EvidenceIntegrityError(
      `block ${block.index} of ${snapshotId} came with no SHA-256 checksum (algorithm ${JSON.stringify(out.ChecksumAlgorithm ?? null)})`,
    );
  }
  const actual = createHash('sha256').update(data).digest('base64');
  if (actual !== out.Checksum) {
    throw new EvidenceIntegrityError(
      `block ${block.index} of ${snapshotId}: its bytes hash to ${actual}, not to the SHA-256 ${out.Checksum} EBS returned with them`,
    );
  }
  if (
    data.byteLength !== blockSize ||
    (out.DataLength !== undefined && Number(out.DataLength) !== blockSize)
  ) {
    throw new EvidenceIntegrityError(
      `block ${block.index} of ${snapshotId} is ${data.byteLength} bytes long, not one block of ${blockSize}`,
    );
  }
  return data;
}

async function readProgress(
  path: string,
  snapshotId: string,
  list: BlockList,
): Promise<Progress | undefined> {
  try {
    const parsed = progressSchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
    if (!parsed.success) return undefined;
    const p = parsed.data;
    return p.snapshotId === snapshotId && p.volumeBytes === list.volumeBytes && p.blockSize === list.blockSize
      ? p
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Pulls one snapshot as a raw image into `<dir>/<snapshot>.raw` through the EBS direct APIs: the
 * listed blocks, a few at a time, each checked against the SHA-256 EBS returns with it and written at
 * its offset in a sparse file the size of the volume (the blocks EBS does not list are zeros: holes).
 * `<name>.part.json` records the blocks on disk, so that a run interrupted (network, Ctrl-C) and run
 * again fetches only the others, with block tokens listed afresh. Once every listed block is there,
 * the image is hashed whole and gets its final name. A block that fails its checksum stops the
 * image (`failed`, the partial image kept for a later run, without that block); a file already at
 * the final name is never overwritten.
 */
export async function downloadSnapshotImage(
  ebs: EBSClient,
  target: ImageTarget,
  dir: string,
  options: ImageOptions = {},
): Promise<ImageOutcome> {
  const finalPath = pathInside(dir, imageName(target.snapshotId));
  const partPath = `${finalPath}.part`;
  const progressPath = `${finalPath}.part.json`;
  const base = { snapshotId: target.snapshotId, volumeId: target.volumeId, path: finalPath };

  const present = await stat(finalPath).then(
    () => true,
    () => false,
  );
  if (present) {
    const found = await hashImage(finalPath);
    const fields = { ...base, volumeBytes: found.bytes, blockSize: 0, blocks: 0, sha256: found.sha256 };
    if (options.expectedSha256 && found.sha256 === options.expectedSha256)
      return { ...fields, status: 'already-complete' };
    return {
      ...fields,
      status: 'failed',
      reason: options.expectedSha256
        ? `${finalPath} already exists, and its SHA-256 ${found.sha256} is not the ${options.expectedSha256} the case's addendum records; it was left as it is`
        : `${finalPath} already exists and no addendum vouches for it; it was left as it is (move it away and run again)`,
    };
  }

  const list = await listSnapshotBlocks(ebs, target.snapshotId);
  options.onListed?.(target, list);
  const fields = {
    ...base,
    volumeBytes: list.volumeBytes,
    blockSize: list.blockSize,
    blocks: list.blocks.length,
  };
  await mkdir(dir, { recursive: true });
  let progress = await readProgress(progressPath, target.snapshotId, list);
  const partSize = await stat(partPath).then(
    (s) => s.size,
    () => -1,
  );
  if (progress && partSize !== list.volumeBytes) progress = undefined;
  const listed = new Set(list.blocks.map((b) => b.index));
  const done = new Set((progress?.done ?? []).filter((i) => listed.has(i)));
  const resumed = done.size > 0;
  if (!progress) {
    // Truncating to the volume's size leaves every block a hole until written: a sparse file.
    const fresh = await open(partPath, 'w');
    await fresh.truncate(list.volumeBytes);
    await fresh.close();
  }
  let saving = Promise.resolve();
  const save = () => {
    const state: Progress = {
      schema: 'cordon.disk-image/1',
      snapshotId: target.snapshotId,
      volumeBytes: list.volumeBytes,
      blockSize: list.blockSize,
      done: [...done].sort((a, b) => a - b),
    };
    const body = JSON.stringify(state);
    saving = saving.then(async () => {
      await writeFile(`${progressPath}.tmp`, body);
      await rename(`${progressPath}.tmp`, progressPath);
    });
    return saving;
  };
  await save();
  if (done.size) options.onProgress?.(done.size * list.blockSize);

  const file: FileHandle = await open(partPath, 'r+');
  try {
    await mapLimit(
      list.blocks.filter((b) => !done.has(b.index)),
      options.concurrency ?? 8,
      async (block) => {
        const data = await fetchBlock(ebs, target.snapshotId, block, list.blockSize);
        await file.write(data, 0, data.byteLength, block.index * list.blockSize);
        done.add(block.index);
        await save();
        options.onProgress?.(data.byteLength);
        await options.onBlock?.(block.index);
      },
    );
  } catch (error) {
    await saving.catch(() => undefined);
    await file.close();
    if (!(error instanceof EvidenceIntegrityError)) throw error;
    return { ...fields, sha256: '', status: 'failed', reason: error.message };
  }
  await saving.catch(() => undefined);
  await file.sync();
  await file.close();

  const whole = await hashImage(partPath);
  if (whole.bytes !== list.volumeBytes) {
    throw new CliError(`${partPath} is ${whole.bytes} bytes, not the volume's ${list.volumeBytes}.`);
  }
  if (options.expectedSha256 && whole.sha256 !== options.expectedSha256) {
    // Every block matched its checksum, yet the image is not the one first recorded: the snapshot
    // served other bytes this time. Keep it under its part name for examination; never call it the image.
    return {
      ...fields,
      sha256: whole.sha256,
      status: 'failed',
      reason: `the image's SHA-256 ${whole.sha256} is not the ${options.expectedSha256} the case's addendum records; it was kept as ${partPath}`,
    };
  }
  await rename(partPath, finalPath);
  await rm(progressPath, { force: true });
  return { ...fields, sha256: whole.sha256, status: resumed ? 'resumed' : 'downloaded' };
}
