// One escaping function for every human-readable output: control and bidi characters spelled out as \uXXXX.
// Dependency-free and pure, so policy/, cloud/, queue/ and the CLI can all use it without loading winston.

/**
 * Characters that change how a terminal or a viewer shows the text around them: C0 controls (ESC, BEL,
 * CR, newline...), DEL, C1 controls, the bidi embeddings, overrides and isolates (U+202A-U+202E,
 * U+2066-U+2069), the bidi marks (U+061C, U+200E, U+200F) and the line/paragraph separators U+2028/U+2029.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const UNSAFE_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const ANY_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const spell = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * `text` with every control or bidi character written as `\uXXXX` (ESC -> `\u001b`, U+202E -> `\u202e`), so a
 * tag key, file name, error reason or finding cannot move the cursor, recolour, ring, forge a line or reorder
 * what is shown. With `keepNewlines` a `\n` stays a line break: for whole outputs assembled from parts that
 * were escaped themselves. Inside a JSON text the result is still valid JSON with the same value.
 */
export function escapeControl(text: string, options: { keepNewlines?: boolean } = {}): string {
  if (!ANY_UNSAFE.test(text)) return text;
  return text.replace(options.keepNewlines ? UNSAFE_BUT_NEWLINE : UNSAFE, spell);
}
