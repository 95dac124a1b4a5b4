// The summary tables say what they count, one meaning per column, the unit in the header: `run --once`'s
// "UnTag calls" are UnTagResources calls exactly as `plan` counts them, the batches' reads are a column of their
// own, and "batches dry-run" counts batches. Each figure is checked against the emulator's call log and state.
import { describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator } from '../../src/emulator/index.js';
import { sh } from '../support/cli.js';
import { cleanupPrefix, policyDoc, tagwardenEnv, uniquePrefix, writePolicies } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const HEADERS = ['policy', 'connections scanned', 'connections violating', 'tags planned', 'tags removed', 'batches', 'UnTag calls', 'batch read calls', 'connections not found', 'batches failed', 'batches dry-run'];

/** The rows of a table printed by the CLI: columns are separated by two or more spaces. */
function rows(text: string, first: string): Array<Record<string, string>> {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`${first}  `));
  const header = (lines[at] ?? '').split(/ {2,}/);
  return lines
    .slice(at + 1)
    .filter((l) => /\S {2,}\d/.test(l))
    .map((l) => Object.fromEntries(l.split(/ {2,}/).map((v, i) => [header[i] ?? `col${i}`, v])));
}

describe('summary columns', () => {
  it('run --once counts UnTagResources calls like plan, reads apart, and dry-run batches as batches', async () => {
    // 300 connections: 1-60 carry only temporary tags (remove.all takes every tag: All=true, read first),
    // 61-300 a tmp- key among others.
    const resources = Array.from({ length: 300 }, (_, i) => ({
      id: `pcc-col${String(i).padStart(15, '0')}`,
      region: REGION,
      tags: i < 60 ? { scratch: 'yes', [`tmp-${i % 3}`]: '1' } : { owner: 'o', [`tmp-${i % 5}`]: '1' },
    }));
    const emulator = await startEmulator({ fixture: { resources } });
    const admin = createEmulatorAdmin(emulator.url);
    const prefix = uniquePrefix('cli-cols');
    const dir = writePolicies([
      policyDoc('wipe-scratch', { regions: [REGION], selector: { tags: { scratch: 'yes' } }, remove: { all: true }, limits: { maxRemovalsPerRun: 100_000 } }),
      policyDoc('strip-tmp', { regions: [REGION], selector: { tags: { owner: 'o' } }, remove: { keyPatterns: ['tmp-*'] }, limits: { maxRemovalsPerRun: 100_000 } }),
    ]);
    const env = tagwardenEnv({ emulatorUrl: emulator.url, prefix, regions: [REGION], extra: { TAGWARDEN_POLICIES_DIR: dir, TAGWARDEN_LOG_LEVEL: 'warn' } });
    try {
      const planned = await sh('tw plan', env);
      expect(planned.code, planned.stderr).toBe(2);
      const planCalls = Object.fromEntries(rows(planned.stdout, 'policy').map((r) => [r.policy, Number(r['UnTag calls'])]));
      expect(Object.keys(planCalls).sort()).toEqual(['strip-tmp', 'wipe-scratch']);

      // Dry run first: batches are counted as batches, nothing is called or removed.
      const dry = await sh('tw run --once --dry-run', env);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout.split('\n')[1]!.split(/ {2,}/)).toEqual(HEADERS);
      for (const r of rows(dry.stdout, 'policy')) {
        expect(r['batches dry-run'], r.policy).toBe(r.batches);
        expect(r['tags removed']).toBe('0');
        expect(r['UnTag calls']).toBe('0');
      }
      expect((await admin.getCalls({ action: 'UnTagResources' })).calls).toEqual([]);

      await admin.clearCalls();
      const run = await sh('tw run --once', env);
      expect(run.code, run.stderr).toBe(0);
      const table = rows(run.stdout, 'policy');
      const log = (await admin.getCalls()).calls;
      const untag = log.filter((c) => c.action === 'UnTagResources');
      // Batches read only with ListTagResources and GetVpcPeerConnectionAttribute; these policies' scans page
      // ListVpcPeerConnections, so the two sets are apart in the emulator's log.
      const batchReads = log.filter((c) => c.action === 'ListTagResources' || c.action === 'GetVpcPeerConnectionAttribute');
      expect(table.reduce((n, r) => n + Number(r['UnTag calls']), 0)).toBe(untag.length);
      expect(table.reduce((n, r) => n + Number(r['batch read calls']), 0)).toBe(batchReads.length);
      expect(batchReads.length).toBeGreaterThan(0);
      for (const r of table) expect(Number(r['UnTag calls']), r.policy).toBe(planCalls[r.policy!]);
      expect(table.reduce((n, r) => n + Number(r['tags removed']), 0)).toBe(untag.reduce((n, c) => n + c.removed, 0));
      expect(table.every((r) => r['batches dry-run'] === '0')).toBe(true);
    } finally {
      await emulator.close();
      await cleanupPrefix(prefix);
    }
  }, 120_000);
});
