// Union packing: every call is safe for every resource in it (checked against matchResource itself, by adding
// each named key the resource lacks with every value the generator knows), every planned pair is removed
// exactly once, and the end state equals exact-set grouping's on random policies and estates.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Batch, Removal, Resource } from '../../src/model.js';
import { callFloor, createBatchPlanner, type Packing } from '../../src/planner/index.js';
import { compilePolicyDocument, matchResource, nameableWhenAbsent, type CompiledPolicy } from '../../src/policy/index.js';
import { compiledPolicy } from '../support/policies.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const ctx = { policy: 'p', region: 'cn-hangzhou', runId: 'run-1' };
const TMP = Array.from({ length: 26 }, (_, i) => `tmp-${String.fromCharCode(97 + i)}`);
const KEYS = ['owner', 'env', 'cost-center', 'FinanceDept', 'k1', 'k2', 'acs:rm:rgId', 'aliyun-x', ...TMP.slice(0, 10)];
const VALUES = ['', 'unknown', 'team-a', 'dev', 'prod', '2025-01-01'];
const VALUE_PATTERNS = ['*', 'unknown*', 'dev', '/^team-/', '?*'];
const PATTERNS = ['tmp-*', 'k?', '*', '/^own/i', '*-*'];

function plan(policy: CompiledPolicy, removals: readonly Removal[], packing: Packing): Batch[] {
  const planner = createBatchPlanner(ctx, { packing, nameableWhenAbsent: (k) => nameableWhenAbsent(policy, k) });
  for (const r of removals) planner.add(r);
  return planner.finish();
}

function removalsOf(policy: CompiledPolicy, estate: readonly Resource[]): Removal[] {
  return estate.flatMap((r) => matchResource(policy, r, NOW) ?? []);
}

/** What the API does with the calls: named keys (or every non-system key) go from each listed resource. */
function apply(estate: readonly Resource[], batches: readonly Batch[]): Map<string, Record<string, string>> {
  const state = new Map(estate.map((r) => [r.id, { ...r.tags }]));
  for (const b of batches) {
    for (const id of b.resourceIds) {
      const tags = state.get(id);
      if (!tags) continue;
      for (const k of b.all ? Object.keys(tags) : b.tagKeys) if (!(b.all && (k.startsWith('acs:') || k.startsWith('aliyun')))) delete tags[k];
    }
  }
  return state;
}

const exemptionArb = fc
  .record({
    resourceIds: fc.option(fc.constant(['pcc-1', 'pcc-7']), { nil: undefined }),
    tags: fc.option(fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUE_PATTERNS), { minKeys: 1, maxKeys: 2 }), { nil: undefined }),
    until: fc.constantFrom('2026-01-01', '2027-01-01'),
    reason: fc.constant('testing'),
  })
  .filter((e) => e.resourceIds !== undefined || e.tags !== undefined)
  .map((e) => Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined)));

const removeArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ all: true }) },
  {
    weight: 4,
    arbitrary: fc
      .record({
        keys: fc.subarray(KEYS.filter((k) => !k.startsWith('acs:') && !k.startsWith('aliyun'))),
        keyPatterns: fc.subarray(PATTERNS),
        where: fc.dictionary(fc.constantFrom('tmp-a', 'tmp-b', 'k1', 'owner'), fc.constantFrom(...VALUE_PATTERNS), { maxKeys: 2 }),
      })
      .map(({ keys, keyPatterns, where }) => {
        const listed = new Set(keys);
        const kept = Object.fromEntries(Object.entries(where).filter(([k]) => listed.has(k)));
        return {
          ...(keys.length > 0 ? { keys } : {}),
          ...(keyPatterns.length > 0 ? { keyPatterns } : {}),
          ...(Object.keys(kept).length > 0 ? { where: kept } : {}),
        };
      })
      .filter((r) => 'keys' in r || 'keyPatterns' in r),
  },
);

const policyArb: fc.Arbitrary<CompiledPolicy> = fc
  .record({
    remove: removeArb,
    keep: fc.subarray(['owner', 'env', 'tmp-c', 'k?', '/^cost/']),
    exemptions: fc.array(exemptionArb, { maxLength: 2 }),
    selector: fc.option(fc.record({ tags: fc.dictionary(fc.constantFrom('env', 'tmp-d'), fc.constantFrom('*', 'dev', '/^p/'), { minKeys: 1, maxKeys: 1 }) }), {
      nil: undefined,
      freq: 3,
    }),
  })
  .map((spec) => {
    const listed = [...(('keys' in spec.remove ? spec.remove.keys : undefined) ?? []), ...(('keyPatterns' in spec.remove ? spec.remove.keyPatterns : undefined) ?? [])];
    const keep = spec.keep.filter((k) => !listed.includes(k));
    const doc = {
      apiVersion: 'tagwarden/v1',
      kind: 'TagPolicy',
      metadata: { name: 'p' },
      spec: { regions: ['cn-hangzhou'], ...spec, keep, ...(spec.selector ? {} : { selector: undefined }) },
    };
    return compilePolicyDocument(JSON.parse(JSON.stringify(doc)), NOW).policy;
  })
  .filter((p): p is CompiledPolicy => p !== undefined);

/** Estates where resources often differ: a wide key vocabulary, with now and then more than 20 keys on one. */
const estateArb = (vocabulary: readonly string[], maxKeys: number): fc.Arbitrary<Resource[]> =>
  fc
    .array(fc.dictionary(fc.constantFrom(...vocabulary), fc.constantFrom(...VALUES), { maxKeys }), { minLength: 1, maxLength: 140 })
    .map((tagSets) => tagSets.map((tags, i) => ({ id: `pcc-${i}`, region: 'cn-hangzhou', tags, attributes: {} })));

const WIDE = [...KEYS, ...TMP.slice(10)];

describe('union packing', () => {
  it('never names a key for a resource unless the policy removes it from that resource, or would were it there', () => {
    fc.assert(
      fc.property(policyArb, estateArb(WIDE, 8), (policy, estate) => {
        const byId = new Map(estate.map((r) => [r.id, r]));
        for (const b of plan(policy, removalsOf(policy, estate), 'union')) {
          if (b.all) continue;
          for (const id of b.resourceIds) {
            const resource = byId.get(id)!;
            const own = matchResource(policy, resource, NOW)!;
            for (const key of b.tagKeys) {
              if (Object.hasOwn(resource.tags, key)) {
                expect(own.keys, `${id} carries ${key} and keeps it`).toContain(key);
                continue;
              }
              for (const value of [...VALUES, 'zzz-other']) {
                const gained = matchResource(policy, { ...resource, tags: { ...resource.tags, [key]: value } }, NOW);
                expect(gained?.all === true || (gained?.keys ?? []).includes(key), `${id} would keep ${key}=${value}`).toBe(true);
              }
            }
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it('records in each batch exactly the keys each resource carried: every planned pair once, nothing else', () => {
    fc.assert(
      fc.property(policyArb, estateArb(WIDE, 24), (policy, estate) => {
        const removals = removalsOf(policy, estate);
        const want = new Set(removals.flatMap((r) => (r.all ? [`${r.resourceId}|*`] : r.keys.map((k) => `${r.resourceId}|${k}`))));
        const got: string[] = [];
        for (const b of plan(policy, removals, 'union')) {
          expect(b.resourceIds.length).toBeGreaterThan(0);
          expect(b.resourceIds.length).toBeLessThanOrEqual(20);
          expect(b.tagKeys.length).toBeLessThanOrEqual(20);
          expect(new Set(b.resourceIds).size).toBe(b.resourceIds.length);
          expect(Object.keys(b.carried ?? {}).sort()).toEqual([...b.resourceIds].sort());
          for (const id of b.resourceIds) {
            const carried = b.carried?.[id] ?? [];
            expect(carried.length).toBeGreaterThan(0);
            if (b.all) got.push(`${id}|*`);
            else for (const k of carried) {
              expect(b.tagKeys).toContain(k);
              got.push(`${id}|${k}`);
            }
          }
        }
        expect(got.length).toBe(want.size);
        expect(new Set(got)).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });

  it('ends in the same state as exact-set grouping, and the state the policy asks for', () => {
    fc.assert(
      fc.property(policyArb, estateArb(WIDE, 24), (policy, estate) => {
        const removals = removalsOf(policy, estate);
        const union = apply(estate, plan(policy, removals, 'union'));
        expect(union).toEqual(apply(estate, plan(policy, removals, 'exact')));
        const byId = new Map(removals.map((r) => [r.resourceId, r]));
        for (const r of estate) {
          const removal = byId.get(r.id);
          const expected = Object.fromEntries(
            Object.entries(r.tags).filter(([k]) => (removal?.all ? k.startsWith('acs:') || k.startsWith('aliyun') : !removal?.keys.includes(k))),
          );
          expect(union.get(r.id)).toEqual(expected);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('never makes fewer calls than the floor, nor more than exact-set grouping', () => {
    fc.assert(
      fc.property(policyArb, estateArb(WIDE, 24), (policy, estate) => {
        const removals = removalsOf(policy, estate);
        const union = plan(policy, removals, 'union').length;
        expect(union).toBeGreaterThanOrEqual(callFloor(removals).bound);
        expect(callFloor(removals).bound).toBeGreaterThanOrEqual(callFloor(removals).simple);
        expect(union).toBeLessThanOrEqual(plan(policy, removals, 'exact').length);
      }),
      { numRuns: 300 },
    );
  });

  it('reaches ceil(violating / 20) when every removable key is nameable and their union fits in 20', () => {
    const policy = compiledPolicy({ remove: { keyPatterns: ['tmp-*'] }, keep: ['owner'] });
    fc.assert(
      fc.property(estateArb(['owner', 'env', ...TMP.slice(0, 20)], 12), (estate) => {
        const removals = removalsOf(policy, estate);
        expect(plan(policy, removals, 'union').length).toBe(Math.ceil(removals.length / 20));
      }),
      { numRuns: 200 },
    );
  });

  it('packs 4,095 distinct key sets of 12 keys at the floor where exact grouping needs one call per set', () => {
    const policy = compiledPolicy({ remove: { keyPatterns: ['tmp-*'] } });
    const estate: Resource[] = Array.from({ length: 4095 }, (_, i) => ({
      id: `pcc-${i}`,
      region: 'cn-hangzhou',
      tags: Object.fromEntries(TMP.slice(0, 12).filter((_, k) => ((i + 1) & (1 << k)) !== 0).map((k) => [k, 'x'])),
      attributes: {},
    }));
    const removals = removalsOf(policy, estate);
    expect(plan(policy, removals, 'union')).toHaveLength(205);
    expect(plan(policy, removals, 'exact')).toHaveLength(4095);
  });

  it('names a key with a where condition only with resources whose value matches', () => {
    const policy = compiledPolicy({ remove: { keys: ['owner', 'tmp-a'], where: { owner: 'unknown*' } } });
    const estate: Resource[] = [
      { id: 'pcc-match', region: 'cn-hangzhou', tags: { owner: 'unknown', 'tmp-a': '1' }, attributes: {} },
      { id: 'pcc-keeps', region: 'cn-hangzhou', tags: { owner: 'team-a', 'tmp-a': '1' }, attributes: {} },
      { id: 'pcc-lacks', region: 'cn-hangzhou', tags: { 'tmp-a': '1' }, attributes: {} },
    ];
    const batches = plan(policy, removalsOf(policy, estate), 'union');
    expect(batches).toHaveLength(2);
    const withOwner = batches.find((b) => b.tagKeys.includes('owner'))!;
    expect(withOwner.resourceIds).toEqual(['pcc-match']);
    const other = batches.find((b) => !b.tagKeys.includes('owner'))!;
    expect([...other.resourceIds].sort()).toEqual(['pcc-keeps', 'pcc-lacks']);
    expect(other.tagKeys).toEqual(['tmp-a']);
  });

  it('never names a key an exemption or the selector tests, for a resource that lacks it', () => {
    const policy = compiledPolicy({
      selector: { tags: { env: '*' } },
      remove: { keyPatterns: ['tmp-*', 'env', 'freeze'] },
      exemptions: [{ tags: { 'tmp-frozen': '*' }, until: '2027-01-01', reason: 'frozen' }],
    });
    expect(nameableWhenAbsent(policy, 'tmp-a')).toBe(true);
    expect(nameableWhenAbsent(policy, 'tmp-frozen')).toBe(false);
    expect(nameableWhenAbsent(policy, 'env')).toBe(false);
    expect(nameableWhenAbsent(policy, 'acs:tmp')).toBe(false);
    expect(nameableWhenAbsent(policy, 'other')).toBe(false);
  });

  it('splits a resource losing more than 20 keys and still shares its calls', () => {
    const policy = compiledPolicy({ remove: { keyPatterns: ['tmp-*'] } });
    const estate: Resource[] = [
      { id: 'pcc-big', region: 'cn-hangzhou', tags: Object.fromEntries(TMP.map((k) => [k, 'x'])), attributes: {} },
      ...Array.from({ length: 19 }, (_, i) => ({ id: `pcc-${i}`, region: 'cn-hangzhou', tags: { 'tmp-a': 'x' }, attributes: {} })),
    ];
    const removals = removalsOf(policy, estate);
    const batches = plan(policy, removals, 'union');
    expect(batches).toHaveLength(callFloor(removals).bound);
    expect(batches).toHaveLength(2);
    expect(batches.flatMap((b) => b.carried?.['pcc-big'] ?? []).sort()).toEqual([...TMP].sort());
  });

  it('hands out full batches while adding (drain) and the rest at finish, each once', () => {
    const policy = compiledPolicy({ remove: { keyPatterns: ['tmp-*'] } });
    const planner = createBatchPlanner(ctx, { nameableWhenAbsent: (k) => nameableWhenAbsent(policy, k) });
    const drained: Batch[] = [];
    for (let i = 0; i < 45; i++) {
      planner.add({ resourceId: `pcc-${i}`, all: false, keys: [TMP[i % 5]!] });
      drained.push(...planner.drain());
    }
    expect(drained).toHaveLength(2);
    const rest = planner.finish();
    expect(rest).toHaveLength(1);
    expect(planner.drain().map((b) => b.id)).toEqual(rest.map((b) => b.id));
    expect(planner.drain()).toEqual([]);
    expect(new Set([...drained, ...rest].flatMap((b) => b.resourceIds)).size).toBe(45);
  });

  it('keeps all=true batches as they were: 20 IDs, the carried keys, never mixed with key calls', () => {
    const policy = compiledPolicy({ remove: { all: true }, keep: ['owner'] });
    const estate: Resource[] = Array.from({ length: 30 }, (_, i) => ({
      id: `pcc-${i}`,
      region: 'cn-hangzhou',
      tags: i % 2 === 0 ? { a: '1', b: '2' } : { a: '1', owner: 'x' },
      attributes: {},
    }));
    const batches = plan(policy, removalsOf(policy, estate), 'union');
    expect(batches.filter((b) => b.all).map((b) => b.resourceIds.length)).toEqual([15]);
    expect(batches.filter((b) => !b.all).map((b) => [b.resourceIds.length, b.tagKeys])).toEqual([[15, ['a']]]);
  });
});
