// End to end on the real Redis and the emulator over HTTP: plan, then run --once, with the shipped policies.
import { afterEach, describe, expect, it } from 'vitest';
import { checkState, createEmulatorAdmin, startEmulator, type RunningEmulator, expectedRemovals } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { planPolicies, runOnce } from '../../src/runtime/index.js';
import { EMULATOR_KEYS, UNLIMITED_QUOTAS, cleanupPrefix, testConfig, tokensReusedWithOtherParams, uniquePrefix } from '../support/harness.js';

const REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing'];
const HUGE = UNLIMITED_QUOTAS;

describe('run --once with the shipped policies', () => {
  let emulator: RunningEmulator | undefined;
  const prefixes: string[] = [];
  afterEach(async () => {
    await emulator?.close();
    for (const p of prefixes.splice(0)) await cleanupPrefix(p);
  });

  it('removes exactly what plan showed on 20,000 connections, and nothing else', async () => {
    emulator = await startEmulator({ generate: { count: 20_000, seed: 7, regions: REGIONS }, quotas: HUGE });
    const admin = createEmulatorAdmin(emulator.url);
    const prefix = uniquePrefix('once');
    prefixes.push(prefix);
    const config = testConfig({ emulatorUrl: emulator.url, prefix, regions: REGIONS, overrides: { quotas: HUGE, concurrency: 16 } });
    const { logger } = createMemoryLogger({ level: 'warn', secrets: [] });
    const now = new Date();
    const before = (await admin.getState()).resources;

    const plan = await planPolicies(config, { policiesPaths: [config.policiesDir], credentials: EMULATOR_KEYS, now: () => now, verbose: true });
    expect(plan.findings.filter((f) => f.severity === 'error')).toEqual([]);
    expect(plan.changesPending).toBe(true);
    expect((await admin.getStats()).byAction.UnTagResources?.total ?? 0).toBe(0); // plan is read-only

    const result = await runOnce(config, { policiesPaths: [config.policiesDir], credentials: EMULATOR_KEYS, logger, now: () => now });
    expect(result.failed).toBe(false);

    // Policies may target the same tag (expired-connections-cleanup removes FinanceDept too), so compare the
    // union of (resource, key) pairs that plan showed with what disappeared from the emulator.
    const plannedPairs = new Set<string>();
    const plannedByPolicy = new Map<string, number>();
    for (const row of plan.rows) {
      if (row.mode !== 'enforce') continue;
      plannedByPolicy.set(row.policy, (plannedByPolicy.get(row.policy) ?? 0) + row.tagsToRemove);
      for (const r of row.resources ?? []) for (const k of r.keys) plannedPairs.add(`${r.id} ${k}`);
    }
    const after = (await admin.getState()).resources;
    const afterById = new Map(after.map((r) => [r.id, r.tags]));
    const removedPairs = new Set<string>();
    for (const r of before) for (const k of Object.keys(r.tags)) if (!(k in (afterById.get(r.id) ?? {}))) removedPairs.add(`${r.id} ${k}`);
    expect(removedPairs.size).toBeGreaterThan(1_000);
    expect([...removedPairs].sort()).toEqual([...plannedPairs].sort());

    for (const row of result.summary) {
      // A tag two policies target is removed by whichever runs first; dry-run policies remove nothing.
      expect(row.removed, row.policy).toBeLessThanOrEqual(plannedByPolicy.get(row.policy) ?? 0);
    }
    const check = checkState(before, after, expectedRemovals(before, result.policies, now));
    expect(check.notRemoved).toEqual([]);
    expect(check.wronglyRemoved).toEqual([]);
    expect(check.removed).toBe(plannedPairs.size);
    const stats = await admin.getStats();
    expect(stats.byAction.UnTagResources?.tagsRemoved).toBe(check.removed);
    const { calls } = await admin.getCalls({ action: 'UnTagResources' });
    expect(tokensReusedWithOtherParams(calls)).toEqual([]);
    // Every UnTagResources call respects the API limits.
    for (const call of calls) {
      const ids = (call.params.ResourceId as string[] | undefined) ?? [];
      const keys = (call.params.TagKey as string[] | undefined) ?? [];
      expect(ids.length).toBeLessThanOrEqual(20);
      expect(keys.length).toBeLessThanOrEqual(20);
    }
  }, 240_000);

  it('sends no UnTagResources call at all in dry-run', async () => {
    emulator = await startEmulator({ generate: { count: 1_500, seed: 3, regions: REGIONS }, quotas: HUGE });
    const admin = createEmulatorAdmin(emulator.url);
    const prefix = uniquePrefix('dry');
    prefixes.push(prefix);
    const config = testConfig({ emulatorUrl: emulator.url, prefix, regions: REGIONS, overrides: { quotas: HUGE, dryRun: true } });
    const { logger, lines } = createMemoryLogger({ level: 'info', secrets: [] });
    const before = (await admin.getState()).resources;
    const result = await runOnce(config, { policiesPaths: [config.policiesDir], credentials: EMULATOR_KEYS, logger });
    expect(result.failed).toBe(false);
    const dryRun = result.summary.reduce((n, s) => n + s.dryRun, 0);
    expect(dryRun).toBeGreaterThan(0);
    expect(result.summary.reduce((n, s) => n + s.removed, 0)).toBe(0);
    expect((await admin.getStats()).byAction.UnTagResources?.total ?? 0).toBe(0);
    expect((await admin.getState()).resources).toEqual(before);
    // Every dry-run batch is in the audit trail.
    const audits = lines.map((l) => JSON.parse(l) as { audit?: boolean; outcome?: string }).filter((l) => l.audit);
    expect(audits.filter((a) => a.outcome === 'dry_run')).toHaveLength(dryRun);
  }, 120_000);
});
