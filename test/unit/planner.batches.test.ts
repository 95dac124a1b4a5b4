import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { batchId, createBatchPlanner, exactGroupingCalls, splitIntoCalls } from '../../src/planner/index.js';
import type { Removal } from '../../src/model.js';

const ctx = { policy: 'p', region: 'cn-hangzhou', runId: 'run-1' };

const removalsArb = fc
  .array(
    fc.record({
      all: fc.boolean(),
      keys: fc.uniqueArray(fc.constantFrom(...Array.from({ length: 45 }, (_, i) => `k${i}`)), { minLength: 1, maxLength: 45 }),
    }),
    { maxLength: 300 },
  )
  .map((rows) => rows.map((r, i): Removal => ({ resourceId: `pcc-${i}`, all: r.all, keys: r.keys })));

// Exact-set grouping (TAGWARDEN_PACKING=exact); union packing has its own tests in planner.union.test.ts.
function plan(removals: Removal[]) {
  const planner = createBatchPlanner(ctx, { packing: 'exact' });
  for (const r of removals) planner.add(r);
  return planner.finish();
}

describe('planner, exact-set grouping', () => {
  it('makes exactly the exact-grouping number of calls, each within the API limits', () => {
    fc.assert(
      fc.property(removalsArb, (removals) => {
        const batches = plan(removals);
        expect(batches.length).toBe(exactGroupingCalls(removals));
        for (const b of batches) {
          expect(b.resourceIds.length).toBeGreaterThan(0);
          expect(b.resourceIds.length).toBeLessThanOrEqual(20);
          expect(b.tagKeys.length).toBeLessThanOrEqual(20);
          if (b.all) expect(b.tagKeys).toEqual([]);
          else expect(b.tagKeys.length).toBeGreaterThan(0);
        }
      }),
    );
  });

  it('covers every (resource, key) pair exactly once and nothing else', () => {
    fc.assert(
      fc.property(removalsArb, (removals) => {
        const want = new Set<string>();
        for (const r of removals) {
          if (r.all) want.add(`${r.resourceId}|*`);
          else for (const k of r.keys) want.add(`${r.resourceId}|${k}`);
        }
        const got: string[] = [];
        for (const b of plan(removals)) {
          for (const id of b.resourceIds) {
            if (b.all) got.push(`${id}|*`);
            else for (const k of b.tagKeys) got.push(`${id}|${k}`);
          }
        }
        expect(got.length).toBe(want.size);
        expect(new Set(got)).toEqual(want);
      }),
    );
  });

  it('only puts a resource in a batch whose keys it must all lose', () => {
    fc.assert(
      fc.property(removalsArb, (removals) => {
        const byId = new Map(removals.map((r) => [r.resourceId, r]));
        for (const b of plan(removals)) {
          for (const id of b.resourceIds) {
            const r = byId.get(id)!;
            expect(r.all).toBe(b.all);
            for (const k of b.tagKeys) expect(r.keys).toContain(k);
          }
        }
      }),
    );
  });

  it('records the carried keys of all=true batches for counting', () => {
    const batches = plan([{ resourceId: 'pcc-a', all: true, keys: ['b', 'a'] }]);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.carried).toEqual({ 'pcc-a': ['a', 'b'] });
  });

  it('is deterministic: the same removals give the same batch IDs', () => {
    fc.assert(
      fc.property(removalsArb, (removals) => {
        expect(plan(removals).map((b) => b.id)).toEqual(plan(removals).map((b) => b.id));
      }),
    );
  });

  it('keeps batch IDs valid as jobId and ClientToken, and distinct per run', () => {
    const id = batchId(ctx, ['pcc-2', 'pcc-1'], ['b', 'a'], false);
    expect(id).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(id).not.toMatch(/^\d+$/);
    expect(id).toBe(batchId(ctx, ['pcc-1', 'pcc-2'], ['a', 'b'], false));
    expect(id).not.toBe(batchId({ ...ctx, runId: 'run-2' }, ['pcc-1', 'pcc-2'], ['a', 'b'], false));
    expect(id).not.toBe(batchId(ctx, ['pcc-1', 'pcc-2'], [], true));
  });

  it('splits an arbitrary request into the cross product of 20-ID and 20-key chunks', () => {
    const ids = Array.from({ length: 45 }, (_, i) => `pcc-${i}`);
    const keys = Array.from({ length: 25 }, (_, i) => `k${i}`);
    const calls = splitIntoCalls([...ids, 'pcc-0'], keys, false);
    expect(calls).toHaveLength(3 * 2);
    expect(new Set(calls.flatMap((c) => c.resourceIds)).size).toBe(45);
    expect(splitIntoCalls(ids, keys, true)).toHaveLength(3);
  });
});
