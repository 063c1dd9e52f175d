import { describe, expect, it } from 'vitest';
import {
  asciiLine,
  cleanText,
  isRecord,
  isSafeText,
  oneLine,
  safeTextSchema,
  showInvisible,
  typedText,
} from '../../../functions/core/text.js';

/** Every kind of character the one rule refuses, each as it would sit inside ordinary text. */
const unsafe: [string, string][] = [
  ['a right-to-left override (U+202E)', '\u202e'],
  ['a left-to-right embedding (U+202A)', '\u202a'],
  ['a pop directional formatting (U+202C)', '\u202c'],
  ['a left-to-right isolate (U+2066)', '\u2066'],
  ['a right-to-left isolate (U+2067)', '\u2067'],
  ['a first strong isolate (U+2068)', '\u2068'],
  ['a pop directional isolate (U+2069)', '\u2069'],
  ['a left-to-right mark (U+200E)', '\u200e'],
  ['a right-to-left mark (U+200F)', '\u200f'],
  ['an Arabic letter mark (U+061C)', '\u061c'],
  ['a zero-width space (U+200B)', '\u200b'],
  ['a zero-width non-joiner (U+200C)', '\u200c'],
  ['a zero-width joiner (U+200D)', '\u200d'],
  ['a word joiner (U+2060)', '\u2060'],
  ['a byte-order mark (U+FEFF)', '\ufeff'],
  ['a soft hyphen (U+00AD)', '\u00ad'],
  ['a tag character (U+E0041)', '\u{e0041}'],
  ['an ANSI clear screen', '\u001b[2J'],
  ['an ANSI colour', '\u001b[31m'],
  ['an OSC window title', '\u001b]0;title\u0007'],
  ['a C1 control sequence introducer (U+009B)', '\u009b31m'],
  ['a next line (U+0085)', '\u0085'],
  ['DEL', '\u007f'],
  ['NUL', '\u0000'],
  ['a newline', '\n'],
  ['a carriage return', '\r'],
  ['a tab', '\t'],
  ['a line separator (U+2028)', '\u2028'],
  ['a paragraph separator (U+2029)', '\u2029'],
  ['a lone high surrogate', '\ud800'],
  ['a lone low surrogate', '\udfff'],
];

/** Text people write, in several scripts, with emoji: none of it is touched. */
const ordinary: [string, string][] = [
  ['English', 'scanner hitting the web tier from 203.0.113.7'],
  ['French', 'Tentative d’accès répétée à l’hôte web-1 — à vérifier'],
  ['German', 'Größere Störung: Überprüfung läuft'],
  ['Greek', 'Ύποπτη σύνδεση από εξωτερική διεύθυνση'],
  ['Russian', 'Подозрительная активность на сервере'],
  ['Arabic', 'نشاط مشبوه على الخادم'],
  ['Hebrew', 'פעילות חשודה בשרת'],
  ['Hindi', 'सर्वर पर संदिग्ध गतिविधि'],
  ['Chinese', '服务器上的可疑活动'],
  ['Japanese', 'サーバーで不審なアクティビティ'],
  ['Korean', '서버에서 의심스러운 활동'],
  ['Thai', 'กิจกรรมที่น่าสงสัยบนเซิร์ฟเวอร์'],
  ['emoji', 'blocked 🔥🚨 by the on-call 👍🏽, flag 🇫🇷, keycap 1️⃣'],
  ['symbols', 'ports 22/tcp & 3389/tcp → closed; 100% ≥ 99.9% ✓'],
];

describe('the one rule', () => {
  it.each(unsafe)('holds %s unsafe', (_name, c) => {
    expect(isSafeText(`web-1${c}tail`)).toBe(false);
  });

  it.each(ordinary)('holds %s text safe', (_name, text) => {
    expect(isSafeText(text)).toBe(true);
  });

  it('holds a surrogate pair safe: it is one character, not two halves', () => {
    expect(isSafeText('a\ud83d\ude00b')).toBe(true);
  });
});

describe('typedText: what a person typed', () => {
  it.each(unsafe)('refuses text holding %s', (_name, c) => {
    const parsed = typedText.safeParse(`web-1${c}tail`);

    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toBe('contains control characters');
  });

  it.each(ordinary)('takes %s text as it was typed', (_name, text) => {
    expect(typedText.parse(text)).toBe(text);
  });

  it('trims the ends, and refuses what is empty once trimmed', () => {
    expect(typedText.parse('  why  ')).toBe('why');
    // JavaScript's trim takes a byte-order mark and line breaks at the ends for white space.
    expect(typedText.parse('\ufeffwhy\n')).toBe('why');
    expect(typedText.safeParse('   ').error?.issues[0]?.message).toBe('empty');
  });

  it('takes 512 characters and refuses 513', () => {
    expect(typedText.safeParse('a'.repeat(512)).success).toBe(true);
    expect(typedText.safeParse('a'.repeat(513)).error?.issues[0]?.message).toBe('over 512 characters');
  });
});

describe('safeTextSchema: text Cordon stores', () => {
  it.each(unsafe)('refuses text holding %s', (_name, c) => {
    expect(safeTextSchema.safeParse(`web-1${c}tail`).success).toBe(false);
  });

  it.each(ordinary)('stores %s text', (_name, text) => {
    expect(safeTextSchema.parse(text)).toBe(text);
  });

  it('refuses what is longer than 512 characters', () => {
    expect(safeTextSchema.safeParse('a'.repeat(513)).success).toBe(false);
  });
});

describe('cleanText: finding text an attacker may write', () => {
  it.each(unsafe)('cleans %s out, never refusing the text', (_name, c) => {
    const clean = cleanText(`web-1${c}tail`) ?? '';

    expect(isSafeText(clean)).toBe(true);
    expect(clean.startsWith('web-1')).toBe(true);
    expect(clean.endsWith('tail')).toBe(true);
    expect(safeTextSchema.safeParse(clean).success).toBe(true);
  });

  it('makes each unsafe run one space', () => {
    expect(cleanText('web-1\u202etail')).toBe('web-1 tail');
    expect(cleanText('web-1\u200b\u200d\ufefftail')).toBe('web-1 tail');
  });

  it('makes a lone surrogate U+FFFD, not a space', () => {
    expect(cleanText('a\ud800b')).toBe('a\ufffdb');
  });

  it('folds a run of unsafe characters and spaces into one space', () => {
    expect(cleanText('a \u001b[2J\r\n\u202e  b')).toBe('a [2J b');
  });

  it.each(ordinary)('leaves %s text as it is', (_name, text) => {
    expect(cleanText(text)).toBe(text);
  });

  it('caps the text, never between the halves of a surrogate pair', () => {
    expect(cleanText('x'.repeat(600))).toHaveLength(512);
    expect(cleanText(`a${'😀'.repeat(4)}`, 4)).toBe('a😀…');
  });

  it('gives nothing for what is not text or holds nothing once cleaned', () => {
    expect(cleanText(42)).toBeUndefined();
    expect(cleanText('\u200b\u0000 \n')).toBeUndefined();
  });
});

describe('the sinks', () => {
  it('oneLine makes every unsafe run one space and keeps ordinary text', () => {
    expect(oneLine('a\u2028b\u009bc\u2066d')).toBe('a b c d');
    for (const [, text] of ordinary) expect(oneLine(text, 512)).toBe(text);
  });

  it('showInvisible writes each unsafe character as a visible escape', () => {
    expect(showInvisible('a\u202eb\u200bc\ud800\u{e0041}')).toBe('a\\u202eb\\u200bc\\ud800\\u{e0041}');
    for (const [, text] of ordinary) expect(showInvisible(text)).toBe(text);
  });

  it('asciiLine leaves printable ASCII only', () => {
    expect(asciiLine('Größe\u001b[2J\n\u202eok', 40)).toBe('Gr??e [2J ok');
    expect(asciiLine(undefined)).toBe('');
  });
});

describe('isRecord', () => {
  it('is true for a plain object only', () => {
    expect(isRecord({ a: 1 })).toBe(true);
    expect([null, [], 'x', 1, undefined].map(isRecord)).toEqual([false, false, false, false, false]);
  });
});
