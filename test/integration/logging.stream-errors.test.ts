// A log destination that fails (stdout on a full disk: /dev/full answers every write with ENOSPC) never stops
// the daemon: it keeps serving, and the lines it could not write are counted in tagwarden_log_lines_dropped_total.
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { CLI, cleanupPrefix, eventually, tagwardenEnv, temporaryTagsPolicy, uniquePrefix, writePolicies } from '../support/harness.js';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

describe('log lines that cannot be written', () => {
  let emulator: RunningEmulator | undefined;
  const prefix = uniquePrefix('devfull');
  const stops: Array<() => void> = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) stop();
    await emulator?.close();
    await cleanupPrefix(prefix);
  });

  it('stdout on a full disk: the daemon keeps running, counts the dropped lines and stops cleanly', async () => {
    emulator = await startEmulator({ generate: { count: 50, seed: 9, regions: ['cn-hangzhou'] } });
    const port = await freePort();
    const env = tagwardenEnv({
      emulatorUrl: emulator.url,
      prefix,
      regions: ['cn-hangzhou'],
      extra: { TAGWARDEN_POLICIES_DIR: writePolicies([temporaryTagsPolicy(['cn-hangzhou'])]), TAGWARDEN_HTTP_PORT: String(port) },
    });
    const full = openSync('/dev/full', 'w');
    const child = spawn(process.execPath, [CLI, 'run'], { env, stdio: ['ignore', full, 'pipe'] });
    closeSync(full);
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    stops.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });

    const dropped = await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`daemon exited ${child.exitCode}: ${stderr}`);
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const value = Number(/^tagwarden_log_lines_dropped_total (\d+)/m.exec(text)?.[1] ?? 0);
      return value > 0 ? value : undefined;
    }, 60_000, 250);
    expect(dropped).toBeGreaterThan(0);
    // Still alive and serving after its log writes failed.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    child.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(stderr).not.toMatch(/Unhandled 'error' event|ENOSPC/);
  }, 90_000);
});
