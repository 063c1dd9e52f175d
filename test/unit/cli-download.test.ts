import { createHash } from 'node:crypto';
import { type FileHandle, mkdtemp, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { parsePartSize } from '../../scripts/cli/commands/evidence.js';
import {
  type DownloadTarget,
  downloadArtifact,
  downloadCase,
  FolderInUseError,
  folderLockName,
  isDownloadLeftover,
  lockFolder,
  partSizeFor,
  pathInside,
} from '../../scripts/cli/download.js';
import { UsageError } from '../../scripts/cli/errors.js';
import { nameInCase, readSealedCase } from '../../scripts/cli/evidence.js';
import { readGetRecord, stampFile } from '../../scripts/cli/get-record.js';
import { formatDuration, ProgressBar, progressLine, RateMeter } from '../../scripts/cli/output.js';
import { capturedIo } from '../support/cli-fixtures.js';
import { objectBody, type StoredObject, sealedCase, serveObjects } from '../support/cli-mocks.js';

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

/** Serves the image by ranges, part `late` only after every other part has been served. */
function servePartsLate(late: number) {
  let served = 0;
  const parts = Math.ceil(image.byteLength / partSize);
  s3.on(GetObjectCommand).callsFake(async (input: { Range?: string }) => {
    const [, from, to] = /^bytes=(\d+)-(\d+)$/.exec(input.Range ?? '') ?? [];
    const start = Number(from);
    if (start === late * partSize) while (served < parts - 1) await new Promise((r) => setTimeout(r, 5));
    else served += 1;
    return {
      Body: objectBody(image.subarray(start, Number(to) + 1)),
      ContentRange: `bytes ${from}-${to}/${image.byteLength}`,
    };
  });
}

/** FileHandle is not exported: its prototype, from a handle, for a spy on its reads. */
async function fileHandlePrototype(): Promise<FileHandle> {
  const handle = await open(import.meta.filename, 'r');
  await handle.close();
  return Object.getPrototypeOf(handle) as FileHandle;
}

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

  it('resumes with the part size it started with when run again without one', async () => {
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

    const outcome = await downloadArtifact(new S3Client({}), 'evidence', target, dir);

    expect(outcome.status).toBe('resumed');
    expect(ranges().sort()).toEqual(['bytes=6144-8191', 'bytes=8192-9999']);
    expect(await readFile(join(dir, 'memory/image.lime'))).toEqual(image);
  });

  it('starts the file over when run again with another part size', async () => {
    serve();
    await expect(
      downloadArtifact(new S3Client({}), 'evidence', target, dir, {
        partSize,
        partConcurrency: 1,
        onPart: () => {
          throw new Error('network gone');
        },
      }),
    ).rejects.toThrow('network gone');
    s3.resetHistory();

    const outcome = await downloadArtifact(new S3Client({}), 'evidence', target, dir, { partSize: 4096 });

    expect(outcome.status).toBe('downloaded');
    expect(ranges().sort()).toEqual(['bytes=0-4095', 'bytes=4096-8191', 'bytes=8192-9999']);
    expect(await readFile(join(dir, 'memory/image.lime'))).toEqual(image);
  });

  it('hashes parts that arrive out of order once, from memory, without reading the file back', async () => {
    servePartsLate(0);
    const read = vi.spyOn(await fileHandlePrototype(), 'read');
    const stored: number[] = [];

    const outcome = await downloadArtifact(new S3Client({}), 'evidence', target, dir, {
      partSize,
      partConcurrency: 5,
      onPart: (_t, i) => {
        stored.push(i);
      },
    });

    expect(outcome.status).toBe('downloaded');
    expect(stored.at(-1)).toBe(0);
    expect(read).not.toHaveBeenCalled();
    expect(await readFile(join(dir, 'memory/image.lime'))).toEqual(image);
  });

  it('reads back from disk only the parts that could not wait in memory for their turn', async () => {
    servePartsLate(0);
    const read = vi.spyOn(await fileHandlePrototype(), 'read');

    const outcome = await downloadArtifact(new S3Client({}), 'evidence', target, dir, {
      partSize,
      partConcurrency: 5,
      holdBytes: 0,
    });

    expect(outcome.status).toBe('downloaded');
    expect(read).toHaveBeenCalled();
    expect(await readFile(join(dir, 'memory/image.lime'))).toEqual(image);
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
      status: 'conflict',
      reason: expect.stringContaining('was already there with other content; it was left as it is'),
    });
    expect(await readFile(join(dir, 'memory/image.lime'), 'utf8')).toBe('an analyst note');
    expect(s3).toHaveReceivedCommandTimes(GetObjectCommand, 0);
  });
});

describe('the record a case download leaves', () => {
  const caseId = '20261127T201003Z-i-0123456789abcdef0-3fa9';
  const bucket = 'cordon-evidence-dev';
  const record = () => ({ folder: join(dir, '..', `${basename(dir)}-state`), now: () => new Date(0) });

  it("names each file it hashed with the manifest's SHA-256 and the file's stamp once complete", async () => {
    const sealed = sealedCase({
      caseId,
      bucket,
      keyId: 'k',
      artifacts: { 'triage.json': '{"a":1}', 'memory/capture-report.json': '{"b":2}' },
    });
    serveObjects(s3, sealed.objects, {});
    const out = join(dir, 'case');
    const options = { record: record() };

    await downloadCase(
      new S3Client({}),
      await readSealedCase(new S3Client({}), bucket, caseId),
      out,
      options,
    );

    const got = await readGetRecord(options.record.folder, out, caseId);
    expect(Object.keys(got?.files ?? {}).sort()).toEqual(['memory/capture-report.json', 'triage.json']);
    for (const a of sealed.artifacts) {
      const name = a.key.split('/').slice(2).join('/');
      expect(got?.files[name]).toEqual({
        sha256: a.sha256,
        bytes: a.bytes,
        stamp: await stampFile(join(out, name)),
      });
    }
    expect((await readdir(out)).sort()).toEqual(['manifest.json', 'manifest.sig', 'memory', 'triage.json']);
  });

  it('leaves out a file that did not match the manifest', async () => {
    const sealed = sealedCase({ caseId, bucket, keyId: 'k', artifacts: { 'triage.json': '{"a":1}' } });
    const key = `cases/${caseId}/triage.json`;
    sealed.objects.set(key, { versionId: 'v-0', body: Buffer.from('{"a":2}') });
    serveObjects(s3, sealed.objects, {});
    const out = join(dir, 'case');
    const options = { record: record() };

    const outcomes = await downloadCase(
      new S3Client({}),
      await readSealedCase(new S3Client({}), bucket, caseId),
      out,
      options,
    );

    expect(outcomes.find((o) => o.name === 'triage.json')?.status).toBe('failed');
    expect((await readGetRecord(options.record.folder, out, caseId))?.files).toEqual({});
  });
});

describe('one download per folder', () => {
  it('refuses a second download into a folder another one holds, naming its process', async () => {
    const release = await lockFolder(dir);

    await expect(lockFolder(dir, process.pid)).rejects.toThrow(FolderInUseError);
    await expect(lockFolder(dir)).rejects.toThrow(
      `Another cordon evidence get (process ${process.pid}) is writing into ${dir}.`,
    );
    await release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('takes over the lock of a download whose process is gone', async () => {
    // No process has this id: the kernel's limit is below it.
    await writeFile(join(dir, folderLockName), JSON.stringify({ pid: 2 ** 30 }));

    const release = await lockFolder(dir);

    expect(JSON.parse(await readFile(join(dir, folderLockName), 'utf8'))).toMatchObject({ pid: process.pid });
    await release();
  });

  it('knows what a download leaves beside the files it names, and nothing else', () => {
    const listed = new Set(['triage.json', 'memory/image.lime']);

    expect(isDownloadLeftover('triage.json.part', listed)).toBe(true);
    expect(isDownloadLeftover('memory/image.lime.part.json', listed)).toBe(true);
    expect(isDownloadLeftover(folderLockName, listed)).toBe(true);
    expect(isDownloadLeftover('notes.txt.part', listed)).toBe(false);
    expect(isDownloadLeftover('triage.json.bak', listed)).toBe(false);
  });
});

describe('the progress line', () => {
  it('shows the bytes, the rate and the time left at that rate', () => {
    expect(
      progressLine({ label: 'dfb3', done: 96 * 2 ** 20, total: 384 * 2 ** 20, bytesPerSecond: 16 * 2 ** 20 }),
    ).toBe('dfb3 [######------------------]  25% 96.0 MiB of 384.0 MiB  16.0 MiB/s  ETA 0:18');
  });

  it('says the rate is not known yet in the first second, and done at the end', () => {
    expect(progressLine({ label: 'x', done: 0, total: 10 })).toContain('…/s  ETA --:--');
    expect(progressLine({ label: 'x', done: 10, total: 10, bytesPerSecond: 5 })).toMatch(/100% .* done$/);
  });

  it('measures the rate over the last seconds, not since the start', () => {
    const meter = new RateMeter(5000);
    expect(meter.sample(0, 0)).toBeUndefined();
    // A resumed download reports its parts on disk at once: 100 MiB in the first instant.
    meter.sample(10, 100 * 2 ** 20);
    expect(meter.sample(1010, 100 * 2 ** 20 + 2 ** 20)).toBeGreaterThan(50 * 2 ** 20);
    for (let t = 2010; t <= 9010; t += 1000) meter.sample(t, 100 * 2 ** 20 + ((t - 10) / 1000) * 2 ** 20);
    expect(meter.sample(10_010, 110 * 2 ** 20)).toBeCloseTo(2 ** 20, -3);
  });

  it('formats a time left as a person says it', () => {
    expect(formatDuration(18.4)).toBe('0:18');
    expect(formatDuration(3725)).toBe('1:02:05');
  });

  it('draws on a terminal only, redrawn in place, and ends its line', () => {
    const tty = Object.assign(capturedIo(), { errIsTty: true });
    const pipe = capturedIo();
    let now = 0;
    for (const io of [tty, pipe]) {
      const bar = new ProgressBar(io, 100, 'case', () => now);
      bar.update(10);
      now = 2000;
      bar.update(100);
      bar.finish();
      now = 0;
    }

    expect(pipe.stderr).toBe('');
    const erase = '\u001b[K';
    expect(tty.stderr).toBe(
      `\rcase [##----------------------]  10% 10 B of 100 B  …/s  ETA --:--${erase}` +
        `\rcase [########################] 100% 100 B of 100 B  45 B/s  done${erase}\n`,
    );
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

describe('partSizeFor', () => {
  it('takes parts of 8 MiB below 512 MiB and of 16 MiB from there on', () => {
    expect(partSizeFor(10_000)).toBe(8 * 2 ** 20);
    expect(partSizeFor(512 * 2 ** 20 - 1)).toBe(8 * 2 ** 20);
    expect(partSizeFor(512 * 2 ** 20)).toBe(16 * 2 ** 20);
    expect(partSizeFor(64 * 2 ** 30)).toBe(16 * 2 ** 20);
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
