import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { parsePartSize } from '../../scripts/cli/commands/evidence.js';
import { type DownloadTarget, downloadArtifact, pathInside } from '../../scripts/cli/download.js';
import { UsageError } from '../../scripts/cli/errors.js';
import { nameInCase } from '../../scripts/cli/evidence.js';
import { type StoredObject, serveObjects } from '../support/cli-mocks.js';

const s3 = mockClient(S3Client);
const key = 'cases/c/memory/image.lime';
const image = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));
const target: DownloadTarget = {
  name: 'memory/image.lime',
  key,
  versionId: 'v-1',
  bytes: image.byteLength,
  sha256: createHash('sha256').update(image).digest('hex'),
};
const partSize = 2048;

function serve(body: Buffer = image) {
  serveObjects(s3, new Map<string, StoredObject>([[key, { versionId: 'v-1', body }]]), {});
}
const ranges = () => s3.commandCalls(GetObjectCommand).map((c) => c.args[0].input.Range);

let dir: string;
beforeEach(async () => {
  s3.reset();
  dir = await mkdtemp(join(tmpdir(), 'cordon-get-'));
});

describe('downloadArtifact', () => {
  it('fetches the named version in ranged parts and keeps the file when it hashes to the manifest', async () => {
    serve();

    const outcome = await downloadArtifact(new S3Client({}), 'evidence', target, dir, { partSize });

    expect(outcome.status).toBe('downloaded');
    expect(await readFile(join(dir, 'memory/image.lime'))).toEqual(image);
    expect(ranges().sort()).toEqual([
      'bytes=0-2047',
      'bytes=2048-4095',
      'bytes=4096-6143',
      'bytes=6144-8191',
      'bytes=8192-9999',
    ]);
    expect(s3).toHaveReceivedCommandWith(GetObjectCommand, {
      Bucket: 'evidence',
      Key: key,
      VersionId: 'v-1',
    });
  });

  it('resumes from the parts already on disk, fetching only the rest', async () => {
    serve();
    let stored = 0;
    await expect(
      downloadArtifact(new S3Client({}), 'evidence', target, dir, {
        partSize,
        partConcurrency: 1,
        onPart: () => {
          stored += 1;
          if (stored === 3) throw new Error('network gone');
        },
      }),
    ).rejects.toThrow('network gone');
    s3.resetHistory();

    const outcome = await downloadArtifact(new S3Client({}), 'evidence', target, dir, { partSize });

    expect(outcome.status).toBe('resumed');
    expect(ranges().sort()).toEqual(['bytes=6144-8191', 'bytes=8192-9999']);
    expect(await readFile(join(dir, 'memory/image.lime'))).toEqual(image);
    expect(await readdir(join(dir, 'memory'))).toEqual(['image.lime']);
  });

  it('deletes a file whose bytes do not hash to the manifest, and reports it', async () => {
    const altered = Buffer.from(image);
    altered[5000] = (altered[5000] ?? 0) ^ 0xff;
    serve(altered);

    const outcome = await downloadArtifact(new S3Client({}), 'evidence', target, dir, { partSize });

    expect(outcome).toMatchObject({
      status: 'failed',
      reason: expect.stringContaining("differs from the manifest's"),
    });
    expect(await readdir(join(dir, 'memory'))).toEqual([]);
  });

  it('stops at once when S3 holds another size than the manifest says, keeping nothing', async () => {
    serve(Buffer.concat([image, Buffer.from('extra')]));

    const outcome = await downloadArtifact(new S3Client({}), 'evidence', target, dir, {
      partSize,
      partConcurrency: 1,
    });

    expect(outcome).toMatchObject({
      status: 'failed',
      reason: 'memory/image.lime: S3 holds 10005 bytes, the manifest says 10000',
    });
    expect(s3).toHaveReceivedCommandTimes(GetObjectCommand, 1);
    expect(await readdir(join(dir, 'memory'))).toEqual([]);
  });

  it('never overwrites a file already there with other content', async () => {
    serve();
    await downloadArtifact(new S3Client({}), 'evidence', target, dir, { partSize });
    await writeFile(join(dir, 'memory/image.lime'), 'an analyst note');
    s3.resetHistory();

    const outcome = await downloadArtifact(new S3Client({}), 'evidence', target, dir, { partSize });

    expect(outcome).toMatchObject({
      status: 'failed',
      reason: expect.stringContaining('already exists with other content'),
    });
    expect(await readFile(join(dir, 'memory/image.lime'), 'utf8')).toBe('an analyst note');
    expect(s3).toHaveReceivedCommandTimes(GetObjectCommand, 0);
  });
});

describe('names from a manifest', () => {
  it('refuses keys outside the case folder or climbing out of it', () => {
    expect(() => nameInCase('c', 'cases/other/triage.json')).toThrow('outside cases/c/');
    expect(() => nameInCase('c', 'cases/c/../../etc/passwd')).toThrow('unsafe name');
    expect(() => pathInside('/tmp/out', '../escape')).toThrow('outside /tmp/out');
    expect(nameInCase('c', 'cases/c/memory/image.lime')).toBe('memory/image.lime');
  });
});

describe('--part-size', () => {
  it('takes whole MiB from 1 to 1024', () => {
    expect(parsePartSize(undefined)).toBeUndefined();
    expect(parsePartSize('1')).toBe(2 ** 20);
    expect(parsePartSize('64')).toBe(64 * 2 ** 20);
    expect(parsePartSize('1024')).toBe(2 ** 30);
  });

  it.each(['0', '1025', '-8', '8.5', '8MiB', '', '08', '99999'])('refuses %j with a usage error', (text) => {
    expect(() => parsePartSize(text)).toThrow(UsageError);
  });
});
