import { describe, expect, it } from 'vitest';
import { createMemoryLogger, escapeControl } from '../../src/logging/index.js';
import { formatFinding } from '../../src/policy/index.js';

// eslint-disable-next-line no-control-regex
const RAW = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe('escapeControl', () => {
  it('spells out C0, DEL, C1, bidi controls and line separators, and leaves other text alone', () => {
    expect(escapeControl('a\u001b[31mb\u0007c')).toBe('a\\u001b[31mb\\u0007c');
    expect(escapeControl('x\u007fy\u0085z\u009b')).toBe('x\\u007fy\\u0085z\\u009b');
    expect(escapeControl('\u202egnp.exe\u2066\u2069\u200e\u200f\u061c\u2028\u2029')).toBe('\\u202egnp.exe\\u2066\\u2069\\u200e\\u200f\\u061c\\u2028\\u2029');
    expect(escapeControl('line\nnext\ttab\r')).toBe('line\\u000anext\\u0009tab\\u000d');
    expect(escapeControl('line\nnext\u001b', { keepNewlines: true })).toBe('line\nnext\\u001b');
    const plain = 'tmp-😀 ünïcödé 标签 key=value';
    expect(escapeControl(plain)).toBe(plain);
  });

  it('keeps a JSON text valid and equal in meaning', () => {
    const value = { key: 'tmp-\u202e\u0085\u007f', nested: ['\u2066x\u2069'] };
    const text = escapeControl(JSON.stringify(value, null, 2), { keepNewlines: true });
    expect(text).not.toMatch(/[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(JSON.parse(text)).toEqual(value);
  });

  it('is applied to findings and to every log line', () => {
    const shown = formatFinding({ file: 'bad\u001b[2J.yaml', line: 3, column: 1, path: 'spec.remove.keys[0]', message: "'acs:\u202e' is a system tag key", severity: 'error', stage: 'meaning', policy: 'p\u0007' });
    expect(shown).not.toMatch(RAW);
    expect(shown).toContain('bad\\u001b[2J.yaml:3:1');
    const { logger, lines } = createMemoryLogger({ level: 'info', secrets: [] });
    logger.info('batch outcome', { tagKeys: ['tmp-\u202eexe', 'c1\u009b2J', 'del\u007f', 'esc\u001b'] });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(RAW);
    expect((JSON.parse(lines[0]!) as { tagKeys: string[] }).tagKeys).toEqual(['tmp-\u202eexe', 'c1\u009b2J', 'del\u007f', 'esc\u001b']);
  });
});
