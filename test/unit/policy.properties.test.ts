import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Resource } from '../../src/model.js';
import { compilePolicyDocument, matchResource } from '../../src/policy/index.js';
import type { CompiledPolicy } from '../../src/policy/index.js';

// A small vocabulary so generated policies and resources overlap often.
const KEYS = ['owner', 'cost-center', 'env', 'tmp-a', 'tmp-b', 'scratch-1', 'scratch-22', 'FinanceDept', 'k1', 'k2', 'acs:rm:rgId', 'acs:x', 'aliyun-x', 'aliyunfoo'];
const REMOVABLE = KEYS.filter((k) => !k.startsWith('acs:') && !k.startsWith('aliyun'));
const PATTERNS = ['tmp-*', '/^scratch-\\d+$/', '*', 'k?', '/^acs/', 'aliyun*', '/^own/i', '*-*'];
const VALUES = ['', 'unknown', 'unknown-x', 'team-a', 'dev', 'prod', '2025-01-01'];
const VALUE_PATTERNS = ['*', 'unknown*', 'dev', '/^team-/', '?*', ''];
const IDS = ['pcc-1', 'pcc-2', 'pcc-3'];
const REGIONS = ['cn-hangzhou', 'cn-shanghai'];
const UNTILS = ['2026-01-01', '2026-06-30', '2026-06-30T12:00:00+08:00', '2027-01-01', '2026-07-01T00:00:00Z'];
const NOW_MIN = Date.UTC(2025, 11, 1);
const NOW_MAX = Date.UTC(2027, 1, 1);

const tagMap = (keys: readonly string[], values: readonly string[]) =>
  fc.dictionary(fc.constantFrom(...keys), fc.constantFrom(...values), { maxKeys: 4 });

const resourceArb: fc.Arbitrary<Resource> = fc.record({
  id: fc.constantFrom(...IDS),
  region: fc.constantFrom(...REGIONS),
  tags: fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), { maxKeys: 10 }),
  attributes: fc.record({ status: fc.constantFrom('Activated', 'Expired'), vpcId: fc.constantFrom('vpc-a', 'vpc-b'), name: fc.constantFrom('peer-alpha-1', 'peer-beta-2') }),
});

const exemptionArb = fc
  .record({
    resourceIds: fc.option(fc.subarray(IDS, { minLength: 1 }), { nil: undefined }),
    tags: fc.option(tagMap(KEYS, VALUE_PATTERNS), { nil: undefined }),
    until: fc.constantFrom(...UNTILS),
    reason: fc.constant('testing'),
  })
  .filter((e) => e.resourceIds !== undefined || e.tags !== undefined)
  .map((e) => Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined)));

const removeArb = fc.oneof(
  fc.constant({ all: true }),
  fc
    .record({
      keys: fc.subarray(REMOVABLE),
      keyPatterns: fc.subarray(PATTERNS),
      whereValues: fc.array(fc.constantFrom(...VALUE_PATTERNS), { minLength: 3, maxLength: 3 }),
      whereCount: fc.integer({ min: 0, max: 3 }),
    })
    .map(({ keys, keyPatterns, whereValues, whereCount }) => {
      const where = Object.fromEntries(keys.slice(0, whereCount).map((k, i) => [k, whereValues[i] ?? '*']));
      return {
        ...(keys.length > 0 ? { keys } : {}),
        ...(keyPatterns.length > 0 ? { keyPatterns } : {}),
        ...(Object.keys(where).length > 0 ? { where } : {}),
      };
    }),
);

const policyArb: fc.Arbitrary<CompiledPolicy> = fc
  .record({
    regions: fc.subarray(REGIONS, { minLength: 1 }),
    remove: removeArb,
    keep: fc.subarray([...KEYS, ...PATTERNS]),
    exemptions: fc.array(exemptionArb, { maxLength: 3 }),
    selector: fc.option(fc.record({ tags: fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom('*', '*', 'unknown*', '/^team-/'), { minKeys: 1, maxKeys: 1 }) }), { nil: undefined, freq: 1 }),
  })
  .map((spec) => {
    const removeKeys = 'keys' in spec.remove ? (spec.remove.keys ?? []) : [];
    // Keeping a key that is also listed in remove.keys is a validation error; drop such keep entries.
    const keep = spec.keep.filter((k) => !removeKeys.includes(k) && !(('keyPatterns' in spec.remove ? spec.remove.keyPatterns : undefined) ?? []).includes(k));
    const doc = { apiVersion: 'tagwarden/v1', kind: 'TagPolicy', metadata: { name: 'prop' }, spec: { ...spec, keep, ...(spec.selector ? {} : { selector: undefined }) } };
    return compilePolicyDocument(JSON.parse(JSON.stringify(doc)), new Date(NOW_MIN)).policy;
  })
  .filter((p): p is CompiledPolicy => p !== undefined);

// Independent oracles (not the implementation's pattern compiler).
function oracleTest(pattern: string, value: string): boolean {
  const m = /^\/(.*)\/([iu]*)$/s.exec(pattern);
  if (m) return new RegExp(m[1] ?? '', m[2]).test(value);
  const re = new RegExp(`^${pattern.split('').map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}/-]/g, '\\$&'))).join('')}$`, 's');
  return re.test(value);
}
const oracleSystem = (k: string) => k.startsWith('acs:') || k.startsWith('aliyun');
const oracleKept = (p: CompiledPolicy, k: string) => p.document.spec.keep.some((entry) => oracleTest(entry, k));
function oracleEnd(until: string): number {
  return /^\d{4}-\d{2}-\d{2}$/.test(until) ? Date.parse(`${until}T00:00:00Z`) + 86_400_000 : Date.parse(until);
}
function oracleExempt(p: CompiledPolicy, r: Resource, nowMs: number): boolean {
  return p.document.spec.exemptions.some(
    (e) =>
      nowMs < oracleEnd(e.until) &&
      (e.resourceIds === undefined || e.resourceIds.includes(r.id)) &&
      Object.entries(e.tags ?? {}).every(([k, v]) => Object.hasOwn(r.tags, k) && oracleTest(v, r.tags[k] ?? '')),
  );
}

// Uniform instants, plus the instants right at each exemption's end (the off-by-one zone).
const BOUNDARIES = UNTILS.flatMap((u) => [oracleEnd(u) - 1, oracleEnd(u), oracleEnd(u) + 1]);
const nowArb = fc
  .oneof(fc.integer({ min: NOW_MIN, max: NOW_MAX }), fc.constantFrom(...BOUNDARIES))
  .map((ms) => new Date(ms));
const RUNS = { numRuns: 1500 };

describe('matchResource properties', () => {
  it('keep always wins', () => {
    fc.assert(
      fc.property(policyArb, resourceArb, nowArb, (p, r, now) => {
        const removal = matchResource(p, r, now);
        if (!removal) return;
        for (const k of removal.keys) expect(oracleKept(p, k)).toBe(false);
        if (removal.all) for (const k of Object.keys(r.tags)) expect(oracleKept(p, k)).toBe(false);
      }),
      RUNS,
    );
  });

  it('system keys are never removed, and All=true is never used on a resource carrying one', () => {
    fc.assert(
      fc.property(policyArb, resourceArb, nowArb, (p, r, now) => {
        const removal = matchResource(p, r, now);
        if (!removal) return;
        for (const k of removal.keys) expect(oracleSystem(k)).toBe(false);
        if (removal.all) expect(Object.keys(r.tags).some(oracleSystem)).toBe(false);
      }),
      RUNS,
    );
  });

  it('an exempt resource is never touched before its date', () => {
    fc.assert(
      fc.property(policyArb, resourceArb, nowArb, (p, r, now) => {
        if (oracleExempt(p, r, now.getTime())) expect(matchResource(p, r, now)).toBeNull();
      }),
      RUNS,
    );
  });

  it('the result never holds a key the resource does not carry; keys are sorted, unique and non-empty', () => {
    fc.assert(
      fc.property(policyArb, resourceArb, nowArb, (p, r, now) => {
        const removal = matchResource(p, r, now);
        if (!removal) return;
        expect(removal.resourceId).toBe(r.id);
        expect(removal.keys.length).toBeGreaterThan(0);
        for (const k of removal.keys) expect(Object.hasOwn(r.tags, k)).toBe(true);
        expect([...new Set(removal.keys)].sort()).toEqual(removal.keys);
        if (removal.all) expect(removal.keys).toEqual(Object.keys(r.tags).sort());
      }),
      RUNS,
    );
  });

  it('removes exactly the carried keys that are selected, not kept, not system and pass where (non-all policies)', () => {
    fc.assert(
      fc.property(policyArb, resourceArb, nowArb, (p, r, now) => {
        const { remove, selector, regions } = p.document.spec;
        fc.pre(!remove.all);
        const selected = regions.includes(r.region) && Object.entries(selector?.tags ?? {}).every(([k, v]) => Object.hasOwn(r.tags, k) && oracleTest(v, r.tags[k] ?? ''));
        const expected = !selected || oracleExempt(p, r, now.getTime())
          ? []
          : Object.keys(r.tags).filter((k) => {
              if (oracleSystem(k) || oracleKept(p, k)) return false;
              if (!(remove.keys ?? []).includes(k) && !(remove.keyPatterns ?? []).some((pt) => oracleTest(pt, k))) return false;
              const cond = remove.where?.[k];
              return cond === undefined || oracleTest(cond, r.tags[k] ?? '');
            }).sort();
        expect(matchResource(p, r, now)?.keys ?? []).toEqual(expected);
      }),
      RUNS,
    );
  });

  it('does not depend on the order the tags were read in', () => {
    fc.assert(
      fc.property(policyArb, resourceArb, nowArb, (p, r, now) => {
        const reversed = { ...r, tags: Object.fromEntries(Object.entries(r.tags).reverse()) };
        expect(matchResource(p, reversed, now)).toEqual(matchResource(p, r, now));
      }),
      { numRuns: 500 },
    );
  });
});
