import { createHash } from 'node:crypto';

interface PartState {
  /** Bytes that arrived before this part's turn, kept to be hashed when it comes. */
  held: Uint8Array[];
  heldBytes: number;
  /** Its bytes are not (all) in memory: it is read back from disk once complete. */
  fromDisk: boolean;
  complete: boolean;
}

/**
 * One SHA-256 over a file's parts in their order, fed as they arrive, in any order, from parallel
 * ranged reads. The part at the front is hashed as its bytes arrive; the bytes of a later part are held
 * in memory (up to `holdBytes` in all) until the front reaches it, so that each byte is hashed once,
 * from memory, and the file is never read back. A part whose bytes did not fit, or that was already on
 * disk (a resumed download), is read back from disk when its turn comes: memory stays bounded whatever
 * the part size and however far one slow part lags behind the others.
 */
export class InOrderHash {
  private readonly hash = createHash('sha256');
  private readonly parts: PartState[];
  private front = 0;
  private heldBytes = 0;
  /** Set while the front part is read back from disk: bytes arriving meanwhile wait their turn. */
  private reading = false;
  private advancing: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | undefined;
  /** Bytes read back from disk, for the caller's report (and the tests). */
  readBackBytes = 0;
  /** The most bytes held in memory at once: never above `holdBytes`. */
  mostHeld = 0;

  constructor(
    count: number,
    private readonly holdBytes: number,
    /** The bytes of part `index` as they are on disk now: called only once that part is complete. */
    private readonly readBack: (index: number) => AsyncIterable<Uint8Array>,
  ) {
    this.parts = Array.from({ length: count }, () => ({
      held: [],
      heldBytes: 0,
      fromDisk: false,
      complete: false,
    }));
  }

  /** Part `index` is on disk already, from an earlier run: it is read back when its turn comes. */
  onDisk(index: number): void {
    const part = this.part(index);
    part.fromDisk = true;
    part.complete = true;
    if (index === this.front) this.advance();
  }

  /** The next bytes of part `index`, in the order they stand in it. */
  add(index: number, chunk: Uint8Array): void {
    const part = this.part(index);
    if (part.complete) throw new Error(`part ${index} was already complete`);
    if (part.fromDisk) return;
    if (index === this.front && !this.reading) {
      this.hash.update(chunk);
      return;
    }
    if (this.heldBytes + chunk.byteLength > this.holdBytes) {
      // No room: this part is read back from disk when its turn comes.
      this.heldBytes -= part.heldBytes;
      part.held = [];
      part.heldBytes = 0;
      part.fromDisk = true;
      return;
    }
    part.held.push(chunk);
    part.heldBytes += chunk.byteLength;
    this.heldBytes += chunk.byteLength;
    this.mostHeld = Math.max(this.mostHeld, this.heldBytes);
  }

  /** Every byte of part `index` has been added, and is on disk. */
  complete(index: number): void {
    this.part(index).complete = true;
    if (index === this.front) this.advance();
  }

  /** The SHA-256 of the whole file, once every part is complete. */
  async digest(): Promise<string> {
    await this.settle();
    if (this.failure) throw this.failure.error;
    if (this.front !== this.parts.length) {
      throw new Error(`${this.parts.length - this.front} part(s) not complete`);
    }
    return this.hash.digest('hex');
  }

  /** Waits for a read back in progress to end, whatever its outcome: before the file is closed. */
  async settle(): Promise<void> {
    while (this.reading) await this.advancing;
  }

  private part(index: number): PartState {
    const part = this.parts[index];
    if (!part) throw new Error(`no part ${index}`);
    return part;
  }

  /**
   * Moves the front past every part that can be hashed now, at once: bytes that arrive next for the
   * new front part are then hashed as they come. A part to read back from disk continues the walk
   * when read (a read back in progress continues it itself).
   */
  private advance(): void {
    if (this.reading) return;
    while (!this.failure && this.front < this.parts.length) {
      const part = this.part(this.front);
      if (part.fromDisk) {
        if (part.complete) this.readFront();
        return;
      }
      for (const chunk of part.held) this.hash.update(chunk);
      this.heldBytes -= part.heldBytes;
      part.held = [];
      part.heldBytes = 0;
      // Not complete: this part is now the front, and its next bytes are hashed as they arrive.
      if (!part.complete) return;
      this.front += 1;
    }
  }

  private readFront(): void {
    this.reading = true;
    // Started on the next microtask, so that `advancing` is always the read in progress.
    this.advancing = Promise.resolve().then(() => this.readOne());
  }

  // Never rejects (a failure is kept and rethrown by digest), so no rejection goes unhandled.
  private async readOne(): Promise<void> {
    try {
      for await (const bytes of this.readBack(this.front)) {
        this.readBackBytes += bytes.byteLength;
        this.hash.update(bytes);
      }
      this.front += 1;
    } catch (error) {
      this.failure ??= { error };
    } finally {
      this.reading = false;
    }
    this.advance();
  }
}
