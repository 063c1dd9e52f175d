import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InOrderHash } from '../../scripts/cli/in-order-hash.js';

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const tick = () => new Promise((r) => setImmediate(r));

/** A file cut into parts of `partSize`, each part's bytes as the network delivers them: in chunks. */
function partsOf(data: Uint8Array, partSize: number, cuts: number[]): Uint8Array[][] {
  const parts: Uint8Array[][] = [];
  for (let start = 0, i = 0; start < data.byteLength; start += partSize, i += 1) {
    const part = data.subarray(start, Math.min(start + partSize, data.byteLength));
    const chunks: Uint8Array[] = [];
    const step = Math.max(1, cuts[i % cuts.length] ?? 1);
    for (let at = 0; at < part.byteLength; at += step) chunks.push(part.subarray(at, at + step));
    parts.push(chunks);
  }
  return parts;
}

/** The disk: part `i` of `data`, read in pieces, and only once that part is complete. */
function disk(data: Uint8Array, partSize: number, complete: Set<number>, reads: number[]) {
  return async function* (i: number) {
    if (!complete.has(i)) throw new Error(`part ${i} read back before it was complete`);
    reads.push(i);
    await tick();
    const part = data.subarray(i * partSize, Math.min((i + 1) * partSize, data.byteLength));
    for (let at = 0; at < part.byteLength; at += 100) yield part.subarray(at, at + 100);
  };
}

describe('InOrderHash', () => {
  it('hashes the parts in file order whatever order their bytes arrive in, holding at most holdBytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.integer({ min: 1, max: 700 }),
        fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 200 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 3000 }),
        async (data, partSize, cuts, picks, onDiskFlags, holdBytes) => {
          const parts = partsOf(data, partSize, cuts);
          const complete = new Set<number>();
          const reads: number[] = [];
          const hash = new InOrderHash(parts.length, holdBytes, disk(data, partSize, complete, reads));
          // Parts stored by an earlier run: on disk from the start, never fetched.
          const onDisk = parts.map((_, i) => onDiskFlags[i % onDiskFlags.length] === true);
          for (const [i, yes] of onDisk.entries()) {
            if (!yes) continue;
            complete.add(i);
            hash.onDisk(i);
          }
          const next = parts.map(() => 0);
          const pending = parts.map((_, i) => i).filter((i) => !onDisk[i]);
          let n = 0;
          while (pending.length > 0) {
            const slot = (picks[n % picks.length] ?? 0) % pending.length;
            n += 1;
            const i = pending[slot] as number;
            const chunk = parts[i]?.[next[i] ?? 0];
            if (chunk) {
              hash.add(i, chunk);
              next[i] = (next[i] ?? 0) + 1;
            } else {
              complete.add(i);
              hash.complete(i);
              pending.splice(slot, 1);
            }
            if (n % 3 === 0) await tick();
          }

          expect(await hash.digest()).toBe(sha(data));
          expect(hash.mostHeld).toBeLessThanOrEqual(holdBytes);
          // Each part read back at most once; none at all when every byte could wait in memory (each
          // waiting part holds whole slabs).
          expect(new Set(reads).size).toBe(reads.length);
          const room = data.byteLength + parts.length * hash.slabSize;
          if (holdBytes >= room && !onDisk.some(Boolean)) expect(reads).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reads nothing back when every part arrives in order', async () => {
    const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));
    const parts = partsOf(data, 2048, [300]);
    const hash = new InOrderHash(parts.length, 0, () => {
      throw new Error('read back');
    });

    for (const [i, chunks] of parts.entries()) {
      for (const chunk of chunks) hash.add(i, chunk);
      hash.complete(i);
    }

    expect(await hash.digest()).toBe(sha(data));
    expect(hash.readBackBytes).toBe(0);
  });

  it('holds the bytes of a part that arrives early and hashes them from memory when its turn comes', async () => {
    const data = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 13));
    const [first, second] = partsOf(data, 2048, [512]) as [Uint8Array[], Uint8Array[]];
    const hash = new InOrderHash(2, 2048, () => {
      throw new Error('read back');
    });

    for (const chunk of second) hash.add(1, chunk);
    hash.complete(1);
    for (const chunk of first) hash.add(0, chunk);
    hash.complete(0);

    expect(await hash.digest()).toBe(sha(data));
    expect(hash.readBackBytes).toBe(0);
    expect(hash.mostHeld).toBe(2048);
  });

  it('reads a part back from disk, once complete, when its bytes do not fit in memory', async () => {
    const data = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 7));
    const [first, second] = partsOf(data, 2048, [512]) as [Uint8Array[], Uint8Array[]];
    const complete = new Set<number>();
    const reads: number[] = [];
    const hash = new InOrderHash(2, 1000, disk(data, 2048, complete, reads));

    for (const chunk of second) hash.add(1, chunk);
    complete.add(1);
    hash.complete(1);
    for (const chunk of first) hash.add(0, chunk);
    complete.add(0);
    hash.complete(0);

    expect(await hash.digest()).toBe(sha(data));
    expect(reads).toEqual([1]);
    expect(hash.readBackBytes).toBe(2048);
    expect(hash.mostHeld).toBeLessThanOrEqual(1000);
  });

  it('reports a failure to read a part back from its digest', async () => {
    const hash = new InOrderHash(1, 0, () => {
      throw new Error('the disk is gone');
    });

    hash.onDisk(0);

    await expect(hash.digest()).rejects.toThrow('the disk is gone');
  });

  it('refuses a digest before every part is complete', async () => {
    const hash = new InOrderHash(2, 0, () => {
      throw new Error('read back');
    });
    hash.add(0, new Uint8Array([1]));
    hash.complete(0);

    await expect(hash.digest()).rejects.toThrow('1 part(s) not complete');
  });
});
