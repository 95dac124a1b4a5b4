// A listing that repeats rows (issue 11): whatever order and however often a resource's removal is added,
// no batch names an ID twice and every planned pair is covered; behind the region planner's bounded repeat window,
// a repeat within the window is dropped, so every pair is planned exactly once and counted once.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Batch, Removal } from '../../src/model.js';
import { createBatchPlanner, createRecentIds, type Packing } from '../../src/planner/index.js';

const ctx = { policy: 'p', region: 'cn-hangzhou', runId: 'run-1' };
const KEYS = ['tmp-a', 'tmp-b', 'tmp-c', 'k1', 'k2', 'owner', 'env', 'x'];
const PACKINGS: readonly Packing[] = ['union', 'exact'];

/** Distinct resources' removals (keys or all=true), then a row order in which some are repeated. */
const listingArb = fc
  .uniqueArray(
    fc.record({
      n: fc.integer({ min: 0, max: 999 }),
      all: fc.boolean(),
      keys: fc.subarray(KEYS, { minLength: 1 }),
    }),
    { minLength: 1, maxLength: 90, selector: (r) => r.n },
  )
  .chain((distinct) => {
    const removals: Removal[] = distinct.map((d) => ({ resourceId: `pcc-${d.n}`, keys: d.keys, all: d.all }));
    return fc
      .tuple(fc.shuffledSubarray(removals.map((_, i) => i), { minLength: removals.length }), fc.array(fc.tuple(fc.nat(removals.length - 1), fc.nat(200)), { maxLength: 60 }))
      .map(([order, repeats]) => {
        const rows = [...order];
        // Each repeat goes somewhere after its first copy (possibly far after).
        for (const [index, gap] of repeats) {
          const first = rows.indexOf(index);
          rows.splice(Math.min(rows.length, first + 1 + gap), 0, index);
        }
        return { removals, rows: rows.map((i) => removals[i]!) };
      });
  });

function plan(rows: readonly Removal[], packing: Packing, nameable: boolean): { batches: Batch[]; tagCount: number; resourceCount: number } {
  const planner = createBatchPlanner(ctx, { packing, nameableWhenAbsent: () => nameable });
  for (const r of rows) planner.add(r);
  const batches = planner.finish();
  return { batches, tagCount: planner.tagCount, resourceCount: planner.resourceCount };
}

function pairsOf(batches: readonly Batch[]): string[] {
  return batches.flatMap((b) => b.resourceIds.flatMap((id) => (b.all ? [`${id} *all*`] : (b.carried?.[id] ?? b.tagKeys).map((k) => `${id} ${k}`))));
}
const wanted = (removals: readonly Removal[]): string[] =>
  removals.flatMap((r) => (r.all ? [`${r.resourceId} *all*`] : [...new Set(r.keys)].map((k) => `${r.resourceId} ${k}`))).sort();

describe('the planner on repeated rows', () => {
  it('never puts an ID twice into one batch, and covers every pair, with union and exact packing', () => {
    fc.assert(
      fc.property(listingArb, fc.constantFrom(...PACKINGS), fc.boolean(), ({ removals, rows }, packing, nameable) => {
        const { batches } = plan(rows, packing, nameable);
        for (const b of batches) {
          expect(new Set(b.resourceIds).size, b.id).toBe(b.resourceIds.length);
          expect(b.resourceIds.length).toBeLessThanOrEqual(20);
          expect(b.tagKeys.length).toBeLessThanOrEqual(20);
        }
        expect([...new Set(pairsOf(batches))].sort()).toEqual(wanted(removals));
      }),
      { numRuns: 300 },
    );
  });

  it('behind the repeat window, plans and counts every pair exactly once', () => {
    fc.assert(
      fc.property(listingArb, fc.constantFrom(...PACKINGS), fc.boolean(), ({ removals, rows }, packing, nameable) => {
        // A window larger than the listing: every repeat is within it.
        const recent = createRecentIds(rows.length + 1);
        const kept = rows.filter((r) => !recent.seen(r.resourceId));
        const { batches, tagCount, resourceCount } = plan(kept, packing, nameable);
        expect(pairsOf(batches).sort()).toEqual(wanted(removals));
        expect(resourceCount).toBe(removals.length);
        expect(tagCount).toBe(removals.reduce((n, r) => n + new Set(r.keys).size, 0));
      }),
      { numRuns: 200 },
    );
  });

  it('the repeat window holds at most its size: a repeat further back passes, a nearer one does not', () => {
    const recent = createRecentIds(3);
    const out = ['a', 'b', 'a', 'c', 'd', 'a', 'b'].filter((id) => !recent.seen(id));
    expect(out).toEqual(['a', 'b', 'c', 'd', 'a', 'b']);
  });
});
