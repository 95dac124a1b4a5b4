// Regions that wait for each other: with one process-wide slot, a call waiting for a throttled region's rate
// (a long Retry-After) must not hold the slot, so another region's call goes through meanwhile; and shutdown
// cancels the wait instead of leaving it pending. Real Redis limiter, emulator over HTTP.
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { createCore } from '../../src/runtime/index.js';
import { EMULATOR_KEYS, cleanupPrefix, testConfig, uniquePrefix } from '../support/harness.js';

describe('per-region rate before the shared slot', () => {
  let emulator: RunningEmulator | undefined;
  afterEach(async () => {
    await emulator?.close();
  });

  it('lets another region call while one waits out a Retry-After, and cancels the wait on close', async () => {
    const ids = { 'cn-hangzhou': 'pcc-slotshz0000000001', 'cn-shanghai': 'pcc-slotssh0000000001' };
    emulator = await startEmulator({ fixture: { resources: Object.entries(ids).map(([region, id]) => ({ id, region, tags: { a: '1' } })) } });
    const prefix = uniquePrefix('slots');
    const { logger } = createMemoryLogger({ level: 'warn', secrets: [] });
    const core = createCore(testConfig({ emulatorUrl: emulator.url, prefix, regions: ['cn-hangzhou', 'cn-shanghai'], overrides: { concurrency: 1 } }), { credentials: EMULATOR_KEYS, logger });
    let closed = false;
    try {
      // cn-shanghai answered with an 8 s (here 60 s) Retry-After: its next call waits for its rate.
      await core.limiter.penalize('cn-shanghai', 'UnTagResources', 60_000);
      let waitingSettled = false;
      const waiting = core.cloud.untagResources({ region: 'cn-shanghai', resourceIds: [ids['cn-shanghai']], tagKeys: ['a'], all: false, clientToken: 'slots-sh' });
      const outcome = waiting.then(
        () => 'resolved',
        (err: unknown) => (err instanceof Error ? err.message : String(err)),
      ).finally(() => (waitingSettled = true));
      await new Promise((r) => setTimeout(r, 200));
      // The only slot is free: cn-hangzhou's call goes through while cn-shanghai still waits.
      const { requestId } = await core.cloud.untagResources({ region: 'cn-hangzhou', resourceIds: [ids['cn-hangzhou']], tagKeys: ['a'], all: false, clientToken: 'slots-hz' });
      expect(requestId).not.toBe('');
      expect(waitingSettled).toBe(false);
      // Shutdown cancels the wait: the call fails (HookFailed, transient: retried elsewhere) instead of hanging.
      await core.close();
      closed = true;
      expect(await outcome).toMatch(/HookFailed/);
      const calls = (await (await fetch(`${emulator.url}/_emulator/calls?action=UnTagResources`)).json()) as { calls: Array<{ region: string }> };
      expect(calls.calls.map((c) => c.region)).toEqual(['cn-hangzhou']);
    } finally {
      if (!closed) await core.close();
      await cleanupPrefix(prefix);
    }
  }, 60_000);
});
