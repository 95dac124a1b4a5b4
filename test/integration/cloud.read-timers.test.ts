// A finished call holds nothing: the SDK's HTTP layer (httpx) arms a read timer per request and clears it only in a
// read path the SDK does not take, so each timer lived its whole read timeout holding the request, the response and
// its body (a long scan kept every page of the last 10 s alive). Judged from outside the client: the process's
// pending timers after many calls, against a real emulator over HTTP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCloudClient } from '../../src/cloud/index.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';

const HZ = 'cn-hangzhou';
const KEY = { accessKeyId: 'tagwarden-test', accessKeySecret: 'tagwarden-test-secret' };
const READ_TIMEOUT_MS = 60_000;

describe('the cloud client after a call', () => {
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startEmulator({ generate: { count: 600, seed: 3, regions: [HZ] } });
  });
  afterAll(async () => {
    await emulator.close();
  });

  it('keeps no read timer of a finished call (200 pages read, a 60 s read timeout)', async () => {
    const cloud = createCloudClient({ endpoint: emulator.url, connectTimeoutMs: 5_000, readTimeoutMs: READ_TIMEOUT_MS, signatureVersion: 'v3', credentials: KEY });
    // Every timer of the read timeout's length armed while the calls run (the SDK's, per request).
    const armed: NodeJS.Timeout[] = [];
    const original = globalThis.setTimeout;
    globalThis.setTimeout = ((fn: () => void, ms?: number) => {
      const timer = original(fn, ms);
      if (ms === READ_TIMEOUT_MS) armed.push(timer);
      return timer;
    }) as typeof setTimeout;
    let pages = 0;
    try {
      for (let pass = 0; pass < 10; pass += 1) {
        for await (const page of cloud.listPeerConnections(HZ, { maxResults: 30 })) {
          expect(page.items.length).toBeGreaterThan(0);
          pages += 1;
        }
      }
    } finally {
      globalThis.setTimeout = original;
    }
    expect(pages).toBe(200);
    expect(armed.length).toBeGreaterThanOrEqual(200);
    // A timer still pending holds its request, response and body until it fires.
    const pending = armed.filter((t) => !(t as unknown as { _destroyed: boolean })._destroyed);
    expect(pending.length).toBe(0);
  }, 60_000);
});
