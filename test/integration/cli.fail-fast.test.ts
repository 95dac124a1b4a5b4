// `run --once --fail-fast` as a user runs it: against an endpoint that fails every call it stops at the first
// failed call (no page retry, no scan re-run, no further scans), says so and exits 1; against a dead port it
// ends within seconds. The emulator's call log is the oracle for how many calls were made.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { deadPort, sh } from '../support/cli.js';
import { cleanupPrefix, policyDoc, tagwardenEnv, uniquePrefix, writePolicies } from '../support/harness.js';

const REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing'];

describe('run --once --fail-fast', () => {
  let emulator: RunningEmulator;
  let prefix: string;
  let dir: string;
  beforeAll(async () => {
    // Every call has its socket destroyed without an answer: a transient failure that would be retried.
    emulator = await startEmulator({ generate: { count: 300, seed: 3, regions: REGIONS }, faults: { reset: 1 } });
    prefix = uniquePrefix('cli-ff');
    dir = writePolicies([
      policyDoc('first', { regions: REGIONS, remove: { keyPatterns: ['tmp-*'] } }),
      policyDoc('second', { regions: REGIONS, remove: { keys: ['FinanceDept'] } }),
    ]);
  });
  afterAll(async () => {
    await emulator.close();
    await cleanupPrefix(prefix);
  });

  it('stops at the first failed call: one call in all, exit 1, the reason on stderr', async () => {
    const admin = createEmulatorAdmin(emulator.url);
    // One scan at a time per region and one region, so "the first failed call" is one call.
    const env = tagwardenEnv({ emulatorUrl: emulator.url, prefix, regions: REGIONS, extra: { TAGWARDEN_POLICIES_DIR: dir, TAGWARDEN_SCAN_CONCURRENCY: '1', TAGWARDEN_REGIONS: REGIONS.join(',') } });
    const single = writePolicies([
      policyDoc('first', { regions: ['cn-hangzhou'], remove: { keyPatterns: ['tmp-*'] } }),
      policyDoc('second', { regions: ['cn-hangzhou'], remove: { keys: ['FinanceDept'] } }),
    ]);
    await admin.clearCalls();
    const r = await sh('tw run --once --fail-fast', { ...env, TAGWARDEN_POLICIES_DIR: single }, 60_000);
    expect(r.code, r.stderr.slice(-2000)).toBe(1);
    expect(r.stderr).toMatch(/^tagwarden: --fail-fast: stopped at the first failure: scan of (first|second) in cn-hangzhou failed: .*NetworkError/m);
    const calls = (await admin.getCalls()).calls;
    expect(calls.map((c) => c.fault)).toEqual(['reset']);

    // Every region at once: each scan that started made exactly one call, and the run ended right after.
    await admin.clearCalls();
    const wide = await sh('tw run --once --fail-fast', env, 60_000);
    expect(wide.code).toBe(1);
    const byScan = new Map<string, number>();
    for (const c of (await admin.getCalls()).calls) byScan.set(`${c.action} ${c.region}`, (byScan.get(`${c.action} ${c.region}`) ?? 0) + 1);
    // At most one scan per region ran (scan concurrency 1), each made one call: no retry of a page or a scan.
    expect([...byScan.values()].every((n) => n === 1), JSON.stringify([...byScan])).toBe(true);
    expect(byScan.size).toBeLessThanOrEqual(REGIONS.length);
  }, 120_000);

  it('without --fail-fast the same run retries (so the count above is the flag at work)', async () => {
    const admin = createEmulatorAdmin(emulator.url);
    const single = writePolicies([policyDoc('first', { regions: ['cn-hangzhou'], remove: { keyPatterns: ['tmp-*'] } })]);
    const env = tagwardenEnv({ emulatorUrl: emulator.url, prefix, regions: ['cn-hangzhou'], extra: { TAGWARDEN_POLICIES_DIR: single, TAGWARDEN_RETRY_BASE_MS: '10', TAGWARDEN_RETRY_MAX_MS: '20' } });
    await admin.clearCalls();
    const r = await sh('tw run --once --retries 1', env, 60_000);
    expect(r.code).toBe(1);
    // --retries 1: each page is tried twice; the scan job's own attempts come on top.
    expect((await admin.getCalls()).calls.length).toBeGreaterThanOrEqual(2);
  }, 120_000);

  it('against a dead port it ends within seconds, exit 1', async () => {
    const env = tagwardenEnv({ emulatorUrl: `http://127.0.0.1:${await deadPort()}`, prefix, regions: REGIONS, extra: { TAGWARDEN_POLICIES_DIR: dir } });
    const r = await sh('tw run --once --fail-fast', env, 60_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tagwarden: --fail-fast: stopped at the first failure: .*ECONNREFUSED/m);
    // A liveness bound, not a speed figure (the README gives the measured time, from `npm run bench -- --only cli`).
    expect(r.ms).toBeLessThan(20_000);
  }, 60_000);
});
