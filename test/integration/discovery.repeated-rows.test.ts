// A discovery listing that repeats rows (the same connection twice on one page, or a page that starts with
// the previous page's last row) never produces a batch with a repeated ID, nor sends a (resource, key) pair
// twice, with union and exact packing, keys and all=true (issue 11). Judged from the emulator's call log and
// its end state, through run --once on the real Redis.
import { afterEach, describe, expect, it } from 'vitest';
import { checkState, createEmulatorAdmin, expectedRemovals, startEmulator, type CallRecord, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { createCloudClient } from '../../src/cloud/index.js';
import { runOnce } from '../../src/runtime/index.js';
import { EMULATOR_KEYS, UNLIMITED_QUOTAS, cleanupPrefix, policyDoc, testConfig, uniquePrefix, writePolicies } from '../support/harness.js';

const HZ = 'cn-hangzhou';

/** 230 connections: every one carries tmp-a; every third also tmp-b; every fifth is marked for a full reset. */
function estate(): Array<{ id: string; region: string; tags: Record<string, string> }> {
  return Array.from({ length: 230 }, (_, i) => ({
    id: `pcc-rep${String(i).padStart(4, '0')}`,
    region: HZ,
    tags: {
      'tmp-a': '1',
      ...(i % 3 === 0 ? { 'tmp-b': '2' } : {}),
      ...(i % 5 === 0 ? { reset: 'yes', owner: 'team' } : { owner: 'team' }),
    },
  }));
}

const policies = () =>
  writePolicies([
    policyDoc('strip-tmp', { regions: [HZ], selector: { tags: { owner: '*' } }, remove: { keyPatterns: ['tmp-*'] }, schedule: { every: '1h' } }),
    policyDoc('reset-marked', { regions: [HZ], selector: { tags: { reset: 'yes' } }, remove: { all: true }, schedule: { every: '1h' } }),
  ]);

function problems(calls: readonly CallRecord[]): { repeatedInCall: string[]; pairsTwice: string[]; calls: number } {
  const repeatedInCall: string[] = [];
  const pairs = new Map<string, number>();
  const untag = calls.filter((c) => c.action === 'UnTagResources' && c.applied);
  for (const c of untag) {
    const ids = c.params['ResourceId'] as string[];
    if (new Set(ids).size !== ids.length) repeatedInCall.push(ids.join(','));
    const keys = c.params['All'] === true ? ['*all*'] : (c.params['TagKey'] as string[]);
    for (const id of ids) for (const k of keys) pairs.set(`${id} ${k}`, (pairs.get(`${id} ${k}`) ?? 0) + 1);
  }
  return { repeatedInCall, pairsTwice: [...pairs].filter(([, n]) => n > 1).map(([p]) => p), calls: untag.length };
}

describe('discovery pages that repeat rows', () => {
  let emulator: RunningEmulator | undefined;
  const prefixes: string[] = [];
  afterEach(async () => {
    await emulator?.close();
    emulator = undefined;
    for (const p of prefixes.splice(0)) await cleanupPrefix(p);
  });

  it('the emulator repeats rows as asked: in a page, and at the start of the next page', async () => {
    emulator = await startEmulator({ fixture: { resources: estate() }, quotas: UNLIMITED_QUOTAS });
    const admin = createEmulatorAdmin(emulator.url);
    const cloud = createCloudClient({ endpoint: emulator.url, connectTimeoutMs: 5_000, readTimeoutMs: 10_000, signatureVersion: 'v3', credentials: EMULATOR_KEYS });
    const list = async (): Promise<string[][]> => {
      const pages: string[][] = [];
      for await (const page of cloud.listPeerConnections(HZ, { maxResults: 100 })) pages.push(page.items.map((r) => r.id));
      return pages;
    };
    expect((await list()).map((p) => p.length)).toEqual([100, 100, 30]);
    await admin.setBehaviour({ paging: { repeat: 'in-page' } });
    const inPage = await list();
    expect(inPage.map((p) => p.length)).toEqual([101, 101, 31]);
    for (const p of inPage) expect(p.at(-1)).toBe(p[0]);
    await admin.setBehaviour({ paging: { repeat: 'across-pages' } });
    const across = await list();
    expect(across[1]?.[0]).toBe(across[0]?.at(-1));
    expect(across[2]?.[0]).toBe(across[1]?.at(-1));
    expect(new Set(across.flat()).size).toBe(230);
  });

  for (const packing of ['union', 'exact'] as const) {
    for (const repeat of ['in-page', 'across-pages'] as const) {
      it(`${packing} packing, rows repeated ${repeat}: no batch repeats an ID, no pair is sent twice, the end state is exact`, async () => {
        const before = estate();
        emulator = await startEmulator({ fixture: { resources: before }, quotas: UNLIMITED_QUOTAS, behaviour: { paging: { repeat } } });
        const admin = createEmulatorAdmin(emulator.url);
        // The emulator really repeats: a listing returns more rows than there are connections.
        const prefix = uniquePrefix(`rep-${packing}`);
        prefixes.push(prefix);
        const dir = policies();
        const config = testConfig({ emulatorUrl: emulator.url, prefix, policiesDir: dir, regions: [HZ], overrides: { packing, quotas: UNLIMITED_QUOTAS } });
        const { logger, lines } = createMemoryLogger({ level: 'warn', secrets: [] });
        const now = new Date();
        const result = await runOnce(config, { policiesPaths: [dir], credentials: EMULATOR_KEYS, logger, now: () => now, timeoutMs: 60_000 });

        const { calls } = await admin.getCalls({ limit: 10_000 });
        const listed = calls.filter((c) => c.action === 'ListVpcPeerConnections').length;
        expect(listed).toBeGreaterThan(0);
        expect(result.failed, JSON.stringify(lines.slice(-5))).toBe(false);
        const seen = problems(calls);
        expect(seen.calls).toBeGreaterThan(0);
        expect(seen.repeatedInCall).toEqual([]);
        expect(seen.pairsTwice).toEqual([]);
        const after = (await admin.getState()).resources;
        const check = checkState(before, after, expectedRemovals(before, result.policies, now));
        expect(check.notRemoved).toEqual([]);
        expect(check.wronglyRemoved).toEqual([]);
        // The summary counts each connection once.
        const strip = result.summary.find((r) => r.policy === 'strip-tmp');
        expect(strip?.violating).toBe(230);
      }, 90_000);
    }
  }
});
