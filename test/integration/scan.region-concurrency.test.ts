// Scan concurrency is per region: with TAGWARDEN_SCAN_CONCURRENCY=1, scans of three regions run at the same
// time (their List calls interleave in the emulator's call log), while two scans of one region never overlap.
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { runOnce } from '../../src/runtime/index.js';
import { EMULATOR_KEYS, UNLIMITED_QUOTAS, cleanupPrefix, policyDoc, testConfig, uniquePrefix, writePolicies } from '../support/harness.js';

const REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing'];
const LISTS = ['ListVpcPeerConnections', 'ListTagResources'];

/** [first seq, last seq] of the calls matching `pick`. */
function span<T extends { seq: number }>(calls: readonly T[], pick: (c: T) => boolean): [number, number] {
  const seqs = calls.filter(pick).map((c) => c.seq);
  expect(seqs.length).toBeGreaterThan(3);
  return [Math.min(...seqs), Math.max(...seqs)];
}

describe('scan concurrency per region', () => {
  let emulator: RunningEmulator | undefined;
  const prefixes: string[] = [];
  afterEach(async () => {
    await emulator?.close();
    for (const p of prefixes.splice(0)) await cleanupPrefix(p);
  });

  it('scans every region at once with one slot per region, and never two scans of one region at once', async () => {
    emulator = await startEmulator({ generate: { count: 4_500, seed: 11, regions: REGIONS }, quotas: UNLIMITED_QUOTAS });
    const admin = createEmulatorAdmin(emulator.url);
    // Slow pages, so a scan lasts long enough for the others to start if they may.
    await admin.setFaults({ latencyMs: 15, actions: ['ListVpcPeerConnections', 'ListTagResources'] });
    const prefix = uniquePrefix('scan-regions');
    prefixes.push(prefix);
    // Two policies per region, read by different actions, so the log tells their scans apart.
    const dir = writePolicies([
      policyDoc('by-pattern', { regions: REGIONS, remove: { keyPatterns: ['tmp-*'] }, limits: { maxRemovalsPerRun: 100_000 } }),
      policyDoc('by-key', { regions: REGIONS, remove: { keys: ['FinanceDept', 'legacy-billing-code', 'project'] }, limits: { maxRemovalsPerRun: 100_000 } }),
    ]);
    const config = testConfig({ emulatorUrl: emulator.url, prefix, regions: REGIONS, policiesDir: dir, overrides: { quotas: UNLIMITED_QUOTAS, scanConcurrency: 1 } });
    const result = await runOnce(config, { policiesPaths: [dir], credentials: EMULATOR_KEYS, logger: createMemoryLogger({ level: 'warn', secrets: [] }).logger });
    expect(result.failed).toBe(false);
    expect(result.summary.reduce((n, s) => n + s.scans, 0)).toBe(6);

    const { calls } = await admin.getCalls({ limit: 100_000 });
    const lists = calls.filter((c) => LISTS.includes(c.action));
    // Regions in parallel: the pattern scans of the three regions overlap pairwise.
    const byRegion = REGIONS.map((r) => span(lists, (c) => c.action === 'ListVpcPeerConnections' && c.region === r));
    for (const [a0, a1] of byRegion) for (const [b0, b1] of byRegion) expect(a0 < b1 && b0 < a1).toBe(true);
    // One slot per region: the two scans of a region (one per action) do not overlap.
    for (const region of REGIONS) {
      const [p0, p1] = span(lists, (c) => c.action === 'ListVpcPeerConnections' && c.region === region);
      const [k0, k1] = span(lists, (c) => c.action === 'ListTagResources' && c.region === region && !(Array.isArray(c.params.ResourceId) && c.params.ResourceId.length > 0));
      expect(p1 < k0 || k1 < p0, `${region}: pattern scan ${p0}-${p1}, key scan ${k0}-${k1}`).toBe(true);
    }
  }, 180_000);
});
