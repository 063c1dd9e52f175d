/**
 * The one rule for text from outside (a finding, a tag, a name, what a person typed) and everything
 * built on it: what a stored field may hold, what a person may type, how finding text is cleaned, and
 * how a value is made safe for a log line, a message or a terminal. Every reader and every sink takes
 * its rule from here, so that no two of them can disagree about what is safe.
 */
import { z } from 'zod';

/**
 * The characters no reader may receive raw, in one class:
 * - `Cc`: C0 controls (the ANSI escape, newlines, NUL), DEL and C1 controls (U+009B is a one-byte CSI
 *   to some terminals);
 * - `Cf`: format characters, invisible yet able to reorder what a person reads (bidirectional marks,
 *   overrides and isolates: U+200E/F, U+202A–202E, U+2066–2069, U+061C) or to hide in it (zero-width
 *   U+200B/C/D, U+2060, the byte-order mark U+FEFF, the soft hyphen, tag characters);
 * - `Zl`, `Zp`: the line and paragraph separators, line breaks to some viewers;
 * - `Cs`: with the `u` flag only a lone surrogate matches, never a pair: half a character, which
 *   encoders replace or reject.
 *
 * Zero-width joiners are refused with the rest, although some emoji and some scripts' spellings use
 * them: a name that needs one can do without it, and a spoofed one cannot be told from the real one.
 */
const unsafeCharacter = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;
const unsafeCharacters = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/gu;
const loneSurrogates = /\p{Cs}/gu;
/** The rule without lone surrogates, which are replaced one by one before runs of the rest are. */
const unsafeRuns = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+/gu;

/** Whether `text` holds no character of the rule: nothing that a reader could be made to act on or miss. */
export function isSafeText(text: string): boolean {
  return !unsafeCharacter.test(text);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const unsafeMessage = 'contains control characters';

/** Text Cordon stores (a reason, a finding type, who asked): bounded, and refused when it breaks the rule. */
export const safeTextSchema = z.string().max(512).refine(isSafeText, unsafeMessage);

/**
 * Text a person typed (a reason, a name). Refused rather than cleaned when it breaks the rule: the
 * person is there to fix it, and nobody else chose it.
 */
export const typedText = z
  .string()
  .trim()
  .min(1, 'empty')
  .max(512, 'over 512 characters')
  .refine(isSafeText, unsafeMessage);

/** Cuts `text` to `max` characters, marking the cut, never between the two halves of a surrogate pair. */
export function capLength(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, Math.max(0, max - 1));
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** Every run of the rule's characters as one space, every lone surrogate as U+FFFD. */
function flatten(text: string): string {
  return text.replace(loneSurrogates, '\uFFFD').replace(unsafeRuns, ' ');
}

/**
 * Makes a string from outside safe for a log line, a tag, a notification or a terminal: every run of
 * control, separator or format characters (ANSI escapes, newlines, bidirectional overrides, NUL)
 * becomes one space, a lone surrogate becomes U+FFFD, and the length is capped.
 */
export function oneLine(text: string, max = 200): string {
  return capLength(flatten(text).trim(), max);
}

/**
 * Finding text, which an attacker may write (a queried domain, a user agent), made to fit
 * `safeTextSchema`: cleaned as `oneLine` cleans, spaces folded, capped; undefined when nothing is left
 * or the value is not text. Never refused, so that nobody can stop the response by putting a newline
 * in a DNS name.
 */
export function cleanText(value: unknown, max = 512): string | undefined {
  if (typeof value !== 'string') return undefined;
  const clean = flatten(value).replace(/ {2,}/g, ' ').trim();
  return clean === '' ? undefined : capLength(clean, max);
}

/**
 * Text for a sink that takes printable ASCII only (an SNS subject, a message some mail clients mangle
 * otherwise): cleaned as `oneLine` cleans, every other character shown as `?`.
 */
export function asciiLine(value: unknown, max = 200): string {
  return oneLine(String(value ?? ''), max).replace(/[^\x20-\x7e]/g, '?');
}

/** One character as a visible escape: `\n`, `\u001b`, `\u{e0001}`. */
export function escapeCharacter(c: string): string {
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  const code = c.codePointAt(0) ?? 0;
  return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * Shows what `oneLine` would hide: every character of the rule is written as a visible escape
 * (`\u001b[2J`), so that a reader sees that it was there, and nothing acts on it.
 */
export function showInvisible(text: string): string {
  return text.replace(unsafeCharacters, escapeCharacter);
}

/**
 * What JSON.stringify leaves raw of the rule: DEL and C1 controls, format characters, the line and
 * paragraph separators. It escapes C0 controls and lone surrogates itself.
 */
export const rawInJson = /[\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}]/gu;
