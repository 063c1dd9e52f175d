import { styleText } from 'node:util';

/** The formats the CLI uses: a verdict's colour, and bold for what a person must read first. */
export type Style = 'green' | 'red' | 'yellow' | 'bold' | 'dim';

/**
 * Whether to colour what goes to `stream`, by the conventions terminals and CI share: `FORCE_COLOR`
 * (any value but `0` or `false`) turns colour on even into a pipe; otherwise `NO_COLOR` (any non-empty
 * value) or `NODE_DISABLE_COLORS` turn it off; otherwise a terminal that is not `TERM=dumb` gets it.
 * Node's own `styleText` validation reads the same variables; deciding here lets stderr be judged as
 * stderr (styleText checks stdout unless told otherwise) on every Node.js from 20.19 on.
 */
export function wantsColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force !== 'false';
  if (env.NO_COLOR) return false;
  if (env.NODE_DISABLE_COLORS) return false;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

/** Colours `text` when `enabled`, through node:util's styleText; the plain text otherwise. */
export function paint(enabled: boolean | undefined, style: Style, text: string): string {
  return enabled ? styleText(style, text, { validateStream: false }) : text;
}

/** The colour of a verdict or outcome word: green for good, red for failed, yellow for in between. */
export function verdictStyle(word: string): Style | undefined {
  const w = word.trim().toLowerCase();
  if (['pass', 'verified', 'succeeded', 'completed', 'released', 'blocked', 'unblocked', 'ok'].includes(w))
    return 'green';
  if (['fail', 'failed', 'rejected', 'refused'].includes(w)) return 'red';
  if (['unknown', 'not checked', 'partial', 'skipped', 'not listed', 'duplicate', 'running'].includes(w))
    return 'yellow';
  return undefined;
}

/** `word` (padded as given) in its verdict's colour. */
export function paintVerdict(enabled: boolean | undefined, word: string): string {
  const style = verdictStyle(word);
  return style ? paint(enabled, style, word) : word;
}
