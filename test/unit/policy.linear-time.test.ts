// Every policy pattern runs on a linear-time engine: keys and values built to make a backtracking engine
// explode (the classic /^(a+)+$/ against "a"*40 + "!", a 128-character key of a's, a glob with many stars)
// are matched at once, wherever the pattern sits; syntax the engine cannot run is refused with a hint.
// On a backtracking engine each of these tests would not finish: the per-test timeout (generous, 20 s) is the
// failure mode, not a timing assertion.
import { describe, expect, it } from 'vitest';
import type { Resource } from '../../src/model.js';
import { compilePolicies, formatFinding, matchResource } from '../../src/policy/index.js';
import { POLICY_NOW, compiledPolicy } from '../support/policies.js';

const EVIL = '/^(a+)+$/';
const EVIL_GLOB = '*a*a*a*a*a*a*b';
/** Valid tag keys (<= 128 characters, no http://) built to backtrack. */
const HOSTILE = ['a'.repeat(40) + '!', 'a'.repeat(127) + '!', 'a'.repeat(128), 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaX'.slice(0, 128)];

function resource(tags: Record<string, string>, name = 'n'): Resource {
  return { id: 'pcc-1', region: 'cn-hangzhou', tags, attributes: { name } };
}

describe('policy patterns run in linear time', { timeout: 20_000 }, () => {
  it('keyPatterns: /^(a+)+$/ against keys built to backtrack', () => {
    const p = compiledPolicy({ remove: { keyPatterns: [EVIL, EVIL_GLOB] } });
    const tags = Object.fromEntries(HOSTILE.map((k) => [k, 'v']));
    expect(matchResource(p, resource(tags), POLICY_NOW)?.keys).toEqual(['a'.repeat(128)]);
  });

  it('where, selector.tags, selector names and keep', () => {
    const hostileValue = 'a'.repeat(40) + '!';
    const where = compiledPolicy({ remove: { keys: ['k'], where: { k: EVIL } } });
    expect(matchResource(where, resource({ k: hostileValue }), POLICY_NOW)).toBeNull();
    expect(matchResource(where, resource({ k: 'a'.repeat(128) }), POLICY_NOW)?.keys).toEqual(['k']);

    const selector = compiledPolicy({ selector: { tags: { env: EVIL } }, remove: { keys: ['k'] } });
    expect(matchResource(selector, resource({ env: hostileValue, k: '1' }), POLICY_NOW)).toBeNull();

    const names = compiledPolicy({ selector: { attributes: { names: [EVIL, EVIL_GLOB] } }, remove: { keys: ['k'] } });
    expect(matchResource(names, resource({ k: '1' }, 'a'.repeat(127) + '!'), POLICY_NOW)).toBeNull();

    const keep = compiledPolicy({ remove: { keyPatterns: ['*'] }, keep: [EVIL, EVIL_GLOB] });
    const tags = Object.fromEntries(HOSTILE.map((k) => [k, 'v']));
    expect(matchResource(keep, resource(tags), POLICY_NOW)?.keys).toEqual(HOSTILE.filter((k) => k !== 'a'.repeat(128)).sort());

    const exemption = compiledPolicy({ remove: { keys: ['k'] }, exemptions: [{ tags: { owner: EVIL }, until: '2099-01-01', reason: 'r' }] });
    expect(matchResource(exemption, resource({ owner: hostileValue, k: '1' }), POLICY_NOW)?.keys).toEqual(['k']);
  });

  it('a 128-character key of a’s, 10,000 times', () => {
    const p = compiledPolicy({ remove: { keyPatterns: [EVIL] } });
    const key = 'a'.repeat(127) + 'b';
    let removed = 0;
    for (let i = 0; i < 10_000; i++) if (matchResource(p, resource({ [key]: 'v' }), POLICY_NOW)) removed++;
    expect(removed).toBe(0);
  });

  it('case-insensitive regexes and globs keep their meaning', () => {
    const p = compiledPolicy({ remove: { keyPatterns: ['/^TMP-\\d+$/i', 'scratch-?x*'] } });
    expect(matchResource(p, resource({ 'tmp-12': '1', 'tmp-x': '1', 'scratch-1x-y': '1', 'scratch-x': '1', 'scratch-\nxz': '1' }), POLICY_NOW)?.keys).toEqual([
      'scratch-\nxz',
      'scratch-1x-y',
      'tmp-12',
    ]);
  });
});

describe('validate refuses what the linear-time engine cannot run', () => {
  const cases: Array<[string, string, RegExp, RegExp]> = [
    ['keyPatterns', '      keyPatterns: ["/^(?!keep-).*$/"]\n', /lookahead '\(\?!' .*not supported/, /spec\.keep/],
    ['keyPatterns', '      keyPatterns: ["/^(?=tmp)tmp-.*$/"]\n', /lookahead '\(\?=' .*not supported/, /spec\.keep/],
    ['keyPatterns', "      keyPatterns: ['/^(?<=x)y/']\n", /lookbehind '\(\?<=' .*not supported/, /spell the prefix out/],
    ['keyPatterns', "      keyPatterns: ['/^(dev|prod)-\\1$/']\n", /backreference '\\1' .*not supported/, /spell the repeated part out/],
    ['keyPatterns', "      keyPatterns: ['/^(?<e>dev)-\\k<e>$/']\n", /backreference '\\k<…>' .*not supported/, /spell the repeated part out/],
  ];
  for (const [field, line, message, hint] of cases) {
    it(`${field}: ${line.trim()}`, () => {
      const text = `apiVersion: tagwarden/v1\nkind: TagPolicy\nmetadata:\n  name: p\nspec:\n  resourceType: PeerConnection\n  regions: [cn-hangzhou]\n  remove:\n${line}`;
      const { policies, findings } = compilePolicies([{ file: 'bad.yaml', text }], POLICY_NOW);
      expect(policies).toEqual([]);
      const errors = findings.filter((f) => f.severity === 'error');
      expect(errors).toHaveLength(1);
      const f = errors[0]!;
      expect(f.message).toMatch(message);
      expect(f.expected).toMatch(hint);
      // file:line:column of the offending scalar (line 9, where the pattern sits inside the flow sequence)
      expect({ file: f.file, line: f.line }).toEqual({ file: 'bad.yaml', line: 9 });
      expect(f.column).toBe(line.indexOf(line.includes('"') ? '"' : "'") + 1);
      expect(formatFinding(f)).toMatch(/^bad\.yaml:9:\d+/);
    });
  }

  it('a character class may hold what looks like lookaround', () => {
    expect(() => compiledPolicy({ remove: { keyPatterns: ['/^[(?=]x[(?!]$/'] } })).not.toThrow();
  });
});
