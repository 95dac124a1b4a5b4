// A daemon scanning tag keys built to backtrack, with the classic catastrophic pattern /^(a+)+$/ in
// keyPatterns, where, selector.tags and keep: the scan finishes, /healthz keeps answering within a second
// throughout, and SIGTERM drains. On a backtracking engine the first key pins the CPU for minutes.
import { afterEach, describe, expect, it } from 'vitest';
import { checkState, createEmulatorAdmin, expectedRemovals, startEmulator, type EmulatorResource, type RunningEmulator } from '../../src/emulator/index.js';
import { compilePolicies } from '../../src/policy/index.js';
import { readPolicySources } from '../../src/policy-files/index.js';
import { cleanupPrefix, daemonPort, eventually, policyDoc, spawnTagwarden, tagwardenEnv, uniquePrefix, writePolicies, type TagwardenProcess } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const EVIL = '/^(a+)+$/';
const BACKTRACK_KEY = 'a'.repeat(40) + '!';
const LONG_KEY = 'a'.repeat(128);
const NEAR_KEY = 'a'.repeat(127) + '!';

describe('a daemon scanning keys built to backtrack', () => {
  let emulator: RunningEmulator | undefined;
  const procs: TagwardenProcess[] = [];
  const prefix = uniquePrefix('redos');
  afterEach(async () => {
    for (const p of procs.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await emulator?.close();
    await cleanupPrefix(prefix);
  });

  it('scans, keeps answering /healthz within 1 s, and drains on SIGTERM', async () => {
    const resources: EmulatorResource[] = Array.from({ length: 60 }, (_, i) => ({
      id: `pcc-redos${String(i).padStart(12, '0')}`,
      region: REGION,
      name: `conn-${i}`,
      tags: { [BACKTRACK_KEY]: 'v', [LONG_KEY]: 'v', [NEAR_KEY]: BACKTRACK_KEY, owner: i % 2 ? BACKTRACK_KEY : LONG_KEY, env: BACKTRACK_KEY },
    }));
    emulator = await startEmulator({ fixture: { resources } });
    const admin = createEmulatorAdmin(emulator.url);
    const policies = [
      policyDoc('redos-keys', { regions: [REGION], schedule: { every: '1h' }, remove: { keyPatterns: [EVIL, '*a*a*a*a*a*a*a*a*b'] }, keep: ['/^(a|aa)+!$/'] }),
      policyDoc('redos-where', { regions: [REGION], schedule: { every: '1h' }, selector: { tags: { env: '/^(a+)+!?$/' } }, remove: { keys: [NEAR_KEY], where: { [NEAR_KEY]: '/^(a+)+!$/' } } }),
    ];
    const dir = writePolicies(policies);
    const before = (await admin.getState()).resources;
    const now = new Date();
    const compiled = compilePolicies((await readPolicySources([dir])).sources, now).policies;
    expect(compiled.map((p) => p.name).sort()).toEqual(['redos-keys', 'redos-where']);
    const removals = expectedRemovals(before, compiled, now);
    // Each resource loses the 128 a's (keyPatterns) and the 127 a's + '!' (where matches its value).
    expect([...removals.values()].every((keys) => keys.has(LONG_KEY) && keys.has(NEAR_KEY) && !keys.has(BACKTRACK_KEY))).toBe(true);

    const daemon = spawnTagwarden(['run'], tagwardenEnv({ emulatorUrl: emulator.url, prefix, regions: [REGION], extra: { TAGWARDEN_POLICIES_DIR: dir } }));
    procs.push(daemon);
    const port = await daemonPort(daemon);

    const misses: string[] = [];
    let probes = 0;
    let probing = true;
    const probe = (async () => {
      let consecutive = 0;
      while (probing) {
        probes++;
        try {
          const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1_000) });
          if (res.status !== 200) throw new Error(`status ${res.status}`);
          consecutive = 0;
        } catch (err) {
          // One slow answer on a loaded machine is tolerated; two in a row are a frozen event loop.
          consecutive++;
          if (consecutive >= 2) misses.push(String(err));
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    await eventually(async () => (checkState(before, (await admin.getState()).resources, removals).ok ? true : undefined), 90_000, 250);
    probing = false;
    await probe;
    expect(probes).toBeGreaterThan(0);
    expect(misses).toEqual([]);

    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    expect(daemon.lines.some((l) => l.includes('"message":"stopped"') && l.includes('"drained":true'))).toBe(true);
  }, 150_000);
});
