import { createInterface } from 'node:readline/promises';
import { capLength, rawInJson, showInvisible } from '../../functions/core/text.js';
import { wantsColour } from './colour.js';

/**
 * Where the CLI writes and reads. Commands never touch `process.stdout` directly, so that tests run
 * them in-process and read exactly what a person would have seen.
 */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Whether stderr is a terminal: the progress bar is drawn only then. */
  readonly errIsTty: boolean;
  /** Whether stdin is a terminal: a confirmation is asked only then. */
  readonly inIsTty: boolean;
  /** The terminal's width when stdout is one; wide tables are fitted to it. */
  readonly columns?: number;
  /** Whether to colour stdout and stderr (colour.ts `wantsColour`); absent: no colour. */
  readonly colour?: { out: boolean; err: boolean };
  ask(question: string): Promise<string>;
}

export function processIo(): Io {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    errIsTty: process.stderr.isTTY === true,
    inIsTty: process.stdin.isTTY === true,
    ...(process.stdout.isTTY && process.stdout.columns ? { columns: process.stdout.columns } : {}),
    colour: { out: wantsColour(process.stdout), err: wantsColour(process.stderr) },
    ask: async (question) => {
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return await rl.question(question);
      } finally {
        rl.close();
      }
    },
  };
}

/**
 * A value from AWS, a finding or an evidence file, made safe for a terminal: one line, bounded, and
 * every character a terminal would act on or hide (C0 and C1 controls, hence ANSI escapes; line and
 * paragraph separators; bidirectional overrides and other format characters; lone surrogates) shown
 * as a visible escape, `\u001b[2J`, so that the investigator sees it was there and nothing acts on it.
 */
export function safe(value: unknown, max = 200): string {
  if (value === undefined || value === null) return '';
  const shown = showInvisible(String(value).trim());
  if (shown.length <= max) return shown;
  // Never leave half an escape before the ellipsis: it would read as something else.
  return capLength(shown, max).replace(/\\(?:u(?:\{[0-9a-f]*|[0-9a-f]{0,3}))?…$/, '…');
}

/** Columns padded to their widest cell; every cell goes through `safe` first. */
export function table(headers: string[], rows: unknown[][], max = 200): string {
  const cells = rows.map((row) => row.map((cell) => safe(cell, max)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...cells.map(line)].join('\n')}\n`;
}

/**
 * A table no wider than `width`: the columns listed in `shrink` give up characters, the widest first,
 * none below 8 or its header, their cells cut with `…` as `safe` cuts text. `below`
 * adds an indented line under a row (cut to the width too), for what has no room in a column.
 */
export function fittedTable(
  headers: string[],
  rows: unknown[][],
  options: { width: number; shrink: number[]; below?: (row: number) => string | undefined; max?: number },
): string {
  const max = options.max ?? 200;
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => safe(row[i], max).length)));
  const total = () => widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1);
  const floor = (i: number) => Math.max(headers[i]?.length ?? 0, 8);
  // The widest shrinkable column gives up a character at a time, so that they end up evenly cut.
  while (total() > options.width) {
    const widest = options.shrink
      .filter((i) => (widths[i] ?? 0) > floor(i))
      .sort((a, b) => (widths[b] ?? 0) - (widths[a] ?? 0))[0];
    if (widest === undefined) break;
    widths[widest] = (widths[widest] ?? 0) - 1;
  }
  const line = (row: string[]) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const out = [line(headers)];
  rows.forEach((row, r) => {
    out.push(line(headers.map((_, i) => safe(row[i], Math.min(max, widths[i] ?? max)))));
    const extra = options.below?.(r);
    if (extra) out.push(`    ${safe(extra, Math.max(20, options.width - 4))}`);
  });
  return `${out.join('\n')}\n`;
}

const jsonEscape = (c: string) =>
  Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join('');

/**
 * One JSON document for scripts. JSON.stringify escapes C0 controls and lone surrogates; the
 * characters it leaves raw are escaped too (as UTF-16 escapes, so the document parses back to the
 * same values).
 */
export function jsonDocument(value: unknown): string {
  return `${JSON.stringify(value, null, 2).replace(rawInJson, jsonEscape)}\n`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** `1:02:03` or `4:05`: how long a person would say, to the second. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * Bytes per second over the last few seconds: what the download does now, not since it started (the
 * parts a resumed download already had arrive at once and would make the first seconds look fast).
 */
export class RateMeter {
  private readonly samples: { at: number; done: number }[] = [];

  constructor(private readonly windowMs = 5000) {}

  /** Records `done` bytes at `at` ms; returns the rate, or undefined until a second of samples exists. */
  sample(at: number, done: number): number | undefined {
    this.samples.push({ at, done });
    while (this.samples.length > 2 && at - (this.samples[1]?.at ?? at) >= this.windowMs) this.samples.shift();
    const first = this.samples[0];
    if (!first || at - first.at < 1000) return undefined;
    return ((done - first.done) * 1000) / (at - first.at);
  }
}

/** One progress line: bar, percentage, bytes, rate and the time left at that rate. */
export function progressLine(p: {
  label: string;
  done: number;
  total: number;
  bytesPerSecond?: number | undefined;
}): string {
  const width = 24;
  const ratio = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
  const filled = Math.round(ratio * width);
  const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
  const pct = `${Math.floor(ratio * 100)}`.padStart(3);
  const rate = p.bytesPerSecond;
  const speed = rate === undefined ? '…/s' : `${formatBytes(Math.round(rate))}/s`;
  const left = p.total - p.done;
  const eta = left <= 0 ? 'done' : rate && rate > 0 ? `ETA ${formatDuration(left / rate)}` : 'ETA --:--';
  return `${p.label} [${bar}] ${pct}% ${formatBytes(p.done)} of ${formatBytes(p.total)}  ${speed}  ${eta}`;
}

/**
 * A one-line progress bar on stderr with the rate and the time left, redrawn in place at most ten
 * times a second; silent unless stderr is a terminal, so that logs and `--json` runs get none of it.
 */
export class ProgressBar {
  private last = Number.NEGATIVE_INFINITY;
  private drawn = false;
  private readonly meter = new RateMeter();

  constructor(
    private readonly io: Io,
    private readonly total: number,
    private readonly label: string,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  update(done: number): void {
    if (!this.io.errIsTty) return;
    const now = this.clock();
    const rate = this.meter.sample(now, done);
    if (now - this.last < 100 && done < this.total) return;
    this.last = now;
    this.io.err(
      `\r${progressLine({ label: safe(this.label, 40), done, total: this.total, bytesPerSecond: rate })}\u001b[K`,
    );
    this.drawn = true;
  }

  finish(): void {
    if (this.drawn) this.io.err('\n');
    this.drawn = false;
  }
}
