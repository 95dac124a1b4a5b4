// Union packing end to end: run --once on random estates, once with TAGWARDEN_PACKING=union and once with exact,
// each on its own emulator over HTTP and its own Redis prefix. The emulator's final states must be equal and
// exactly what the policy asks for; union makes no more calls than exact; counts come from `carried` and
// must equal what the emulator removed.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { checkState, createEmulatorAdmin, expectedRemovals, startEmulator, type EmulatorResource, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { runOnce } from '../../src/runtime/index.js';
import { EMULATOR_KEYS, UNLIMITED_QUOTAS, cleanupPrefix, policyDoc, testConfig, tokensReusedWithOtherParams, uniquePrefix, writePolicies } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const KEYS = ['owner', 'env', 'tmp-a', 'tmp-b', 'tmp-c', 'tmp-d', 'tmp-e', 'tmp-f', 'tmp-frozen', 'legacy', 'cost-center'];
const VALUES = ['unknown', 'team-a', 'dev', 'prod', 'x'];

// Policies whose rules make resources differ: where conditions, keep, an exemption by tag, a selector.
const SPECS: ReadonlyArray<Record<string, unknown>> = [
  { remove: { keyPatterns: ['tmp-*'] }, keep: ['owner'] },
  { remove: { keyPatterns: ['tmp-*', 'owner'], where: { owner: 'unknown' } } },
  { remove: { keyPatterns: ['tmp-*', 'legacy'] }, exemptions: [{ tags: { 'tmp-frozen': '*' }, until: '2099-01-01', reason: 'frozen' }] },
  { selector: { tags: { env: 'dev' } }, remove: { keyPatterns: ['*'] }, keep: ['env', 'cost-*'] },
  { remove: { all: true }, keep: ['cost-center'] },
];

const estateArb = fc.array(fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), { maxKeys: 7 }), { minLength: 50, maxLength: 400 });

describe('union packing end to end', () => {
  const emulators: RunningEmulator[] = [];
  const prefixes: string[] = [];
  afterEach(async () => {
    for (const e of emulators.splice(0)) await e.close();
    for (const p of prefixes.splice(0)) await cleanupPrefix(p);
  });

  async function run(resources: EmulatorResource[], spec: Record<string, unknown>, packing: 'union' | 'exact') {
    const emulator = await startEmulator({ quotas: UNLIMITED_QUOTAS, fixture: { resources } });
    emulators.push(emulator);
    const admin = createEmulatorAdmin(emulator.url);
    const prefix = uniquePrefix(`union-${packing}`);
    prefixes.push(prefix);
    const dir = writePolicies([policyDoc('union-check', { regions: [REGION], ...spec, limits: { maxRemovalsPerRun: 100_000 } })]);
    const config = testConfig({ emulatorUrl: emulator.url, prefix, regions: [REGION], policiesDir: dir, overrides: { quotas: UNLIMITED_QUOTAS, packing } });
    const now = new Date();
    const before = (await admin.getState()).resources;
    const result = await runOnce(config, { policiesPaths: [dir], credentials: EMULATOR_KEYS, logger: createMemoryLogger({ level: 'warn', secrets: [] }).logger, now: () => now });
    expect(result.failed).toBe(false);
    const after = (await admin.getState()).resources;
    const check = checkState(before, after, expectedRemovals(before, result.policies, now));
    const { calls } = await admin.getCalls({ action: 'UnTagResources' });
    return { after, check, calls, removed: result.summary.reduce((n, s) => n + s.removed, 0) };
  }

  it('ends in the same, exact state as exact-set grouping on random estates, in no more calls', async () => {
    await fc.assert(
      fc.asyncProperty(estateArb, fc.constantFrom(...SPECS), async (tagSets, spec) => {
        const resources: EmulatorResource[] = tagSets.map((tags, i) => ({ id: `pcc-u${String(i).padStart(5, '0')}`, region: REGION, tags, name: `n${i}`, status: 'Activated' }));
        const union = await run(resources, spec, 'union');
        const exact = await run(resources, spec, 'exact');
        expect(union.check.notRemoved).toEqual([]);
        expect(union.check.wronglyRemoved).toEqual([]);
        expect(union.after).toEqual(exact.after);
        expect(union.removed).toBe(union.check.removed);
        expect(exact.removed).toBe(exact.check.removed);
        expect(union.calls.length).toBeLessThanOrEqual(exact.calls.length);
        expect(tokensReusedWithOtherParams(union.calls)).toEqual([]);
        for (const call of union.calls) {
          expect(((call.params.ResourceId as string[] | undefined) ?? []).length).toBeLessThanOrEqual(20);
          expect(((call.params.TagKey as string[] | undefined) ?? []).length).toBeLessThanOrEqual(20);
        }
        for (const e of emulators.splice(0)) await e.close();
      }),
      { numRuns: 6, seed: 1313 },
    );
  }, 240_000);
});
