// Cloud response bodies are capped (TAGWARDEN_MAX_RESPONSE_BYTES, 10 MiB by default): a local HTTP server
// answering the official SDK's signed calls with 100 MB, streamed or declared, fails each call as BadResponse
// (transient, from the classify table) after at most the cap is read; the connection is dropped, so the server
// cannot send the rest, and eight such answers at once leave the RSS bounded.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CloudError, createCloudClient } from '../../src/cloud/index.js';
import { loadConfig } from '../../src/config/index.js';
import { EMULATOR_KEYS, eventually } from '../support/harness.js';

const MB = 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'x');

interface Sent {
  bytes: number;
  closedEarly: boolean;
}

/** Answers every request with `size` bytes: `{"RequestId":"r","Pad":"xxx…"}` (valid JSON only when it fits). */
async function startServer(size: number, declare: boolean): Promise<{ url: string; sent: Sent[]; close(): Promise<void> }> {
  const sent: Sent[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    const record: Sent = { bytes: 0, closedEarly: false };
    sent.push(record);
    const head = '{"RequestId":"r-big","Pad":"';
    const tail = '"}';
    let left = size - head.length - tail.length;
    res.writeHead(200, { 'content-type': 'application/json', ...(declare ? { 'content-length': String(size) } : {}) });
    res.on('close', () => {
      if (!res.writableFinished) record.closedEarly = true;
    });
    const pump = () => {
      if (record.bytes === 0) {
        res.write(head);
        record.bytes += head.length;
      }
      while (left > 0 && !res.destroyed) {
        const part = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
        left -= part.length;
        record.bytes += part.length;
        if (!res.write(part)) {
          res.once('drain', pump);
          return;
        }
      }
      if (!res.destroyed) {
        record.bytes += tail.length;
        res.end(tail);
      }
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sent,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const client = (url: string, maxResponseBytes?: number) =>
  createCloudClient({
    endpoint: url, connectTimeoutMs: 5_000, readTimeoutMs: 60_000, signatureVersion: 'v3', credentials: EMULATOR_KEYS,
    ...(maxResponseBytes !== undefined ? { maxResponseBytes } : {}),
  });

const untag = (c: ReturnType<typeof client>, i = 0) =>
  c.untagResources({ region: 'cn-hangzhou', resourceIds: ['pcc-big000000000001'], tagKeys: ['tmp'], all: false, clientToken: `tw-big-${i}` });

async function failureOf(p: Promise<unknown>) {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CloudError);
    return (err as CloudError).failure;
  }
  throw new Error('the call succeeded');
}

describe('cloud response bodies are capped', () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  it('a streamed 100 MB answer is a BadResponse after at most the cap, and the rest is never sent', async () => {
    const server = await startServer(100 * MB, false);
    closers.push(server.close);
    const failure = await failureOf(untag(client(server.url)));
    expect(failure).toMatchObject({ code: 'BadResponse', kind: 'transient' });
    expect(failure.message).toContain('larger than the 10485760-byte limit');
    await new Promise((r) => setTimeout(r, 200));
    expect(server.sent).toHaveLength(1);
    expect(server.sent[0]!.closedEarly).toBe(true);
    // Socket buffers on both sides hold a few MB at most beyond what was read.
    expect(server.sent[0]!.bytes).toBeLessThan(30 * MB);
  }, 60_000);

  it('a declared 100 MB answer is refused before its body is read', async () => {
    const server = await startServer(100 * MB, true);
    closers.push(server.close);
    const failure = await failureOf(untag(client(server.url)));
    expect(failure).toMatchObject({ code: 'BadResponse', kind: 'transient' });
    await new Promise((r) => setTimeout(r, 200));
    expect(server.sent[0]!.closedEarly).toBe(true);
    expect(server.sent[0]!.bytes).toBeLessThan(10 * MB);
  }, 60_000);

  it('eight 100 MB answers at once leave the RSS bounded', async () => {
    const server = await startServer(100 * MB, false);
    closers.push(server.close);
    const c = client(server.url);
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    try {
      const failures = await Promise.all(Array.from({ length: 8 }, (_, i) => failureOf(untag(c, i))));
      expect(failures.every((f) => f.code === 'BadResponse')).toBe(true);
    } finally {
      clearInterval(sampler);
    }
    const grownMb = (peak - before) / MB;
    // Reading each body whole would hold 8 x 100 MB (and more as strings); capped, at most 8 x 10 MB are held.
    console.info(`eight 100 MB answers: peak RSS growth ${grownMb.toFixed(0)} MB`);
    expect(grownMb).toBeLessThan(250);
    await eventually(async () => (server.sent.length === 8 && server.sent.every((s) => s.closedEarly) ? true : undefined), 10_000, 50);
    expect(server.sent.map((s) => s.bytes).filter((b) => b >= 30 * MB)).toEqual([]);
  }, 90_000);

  it('the cap is configurable: 1 MiB refuses a 2 MiB answer that the default accepts', async () => {
    expect(loadConfig({}).maxResponseBytes).toBe(10 * MB);
    const config = loadConfig({ TAGWARDEN_MAX_RESPONSE_BYTES: String(MB) });
    expect(config.maxResponseBytes).toBe(MB);
    expect(() => loadConfig({ TAGWARDEN_MAX_RESPONSE_BYTES: '10' })).toThrow(/TAGWARDEN_MAX_RESPONSE_BYTES/);
    const server = await startServer(2 * MB, true);
    closers.push(server.close);
    expect(await untag(client(server.url))).toEqual({ requestId: 'r-big' });
    const failure = await failureOf(untag(client(server.url, config.maxResponseBytes), 1));
    expect(failure).toMatchObject({ code: 'BadResponse', kind: 'transient' });
    expect(failure.message).toContain('larger than the 1048576-byte limit');
  }, 60_000);
});
