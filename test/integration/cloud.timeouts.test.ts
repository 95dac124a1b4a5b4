// Connect timeout for the connection, read timeout for the answer: a slow answer is bounded by
// TAGWARDEN_READ_TIMEOUT_MS only, whatever the connect timeout (issue 11). Delayed answers come from the
// emulator's latency fault over real HTTP, through the official SDK; the stalled connect from a listener that
// never accepts (its backlog filled), on 127.0.0.1.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudError, createCloudClient, type CloudApi } from '../../src/cloud/index.js';
import { createEmulatorAdmin, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { eventually } from '../support/harness.js';

const HZ = 'cn-hangzhou';
const KEY = { accessKeyId: 'tagwarden-test', accessKeySecret: 'tagwarden-test-secret' };

let slow6: RunningEmulator;
let slow12: RunningEmulator;

beforeAll(async () => {
  const fixture = { resources: [{ id: 'pcc-t1', region: HZ, tags: { temp: '1' } }] };
  [slow6, slow12] = await Promise.all([startEmulator({ fixture }), startEmulator({ fixture })]);
  await createEmulatorAdmin(slow6.url).setFaults({ latencyMs: 6_000, actions: ['GetVpcPeerConnectionAttribute'] });
  await createEmulatorAdmin(slow12.url).setFaults({ latencyMs: 12_000, actions: ['GetVpcPeerConnectionAttribute'] });
});
afterAll(async () => {
  await Promise.all([slow6?.close(), slow12?.close()]);
});

const client = (endpoint: string, connectTimeoutMs: number, readTimeoutMs: number): CloudApi =>
  createCloudClient({ endpoint, connectTimeoutMs, readTimeoutMs, signatureVersion: 'v3', credentials: KEY });

async function failureOf(p: Promise<unknown>): Promise<CloudError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CloudError);
    return err as CloudError;
  }
  throw new Error('expected a CloudError');
}

describe('cloud client timeouts', () => {
  it('connect 5000 / read 10000: a 6 s answer succeeds, a 12 s answer fails as a timeout after the read timeout', async () => {
    const started = performance.now();
    const [ok, failed] = await Promise.all([
      client(slow6.url, 5_000, 10_000).getPeerConnection(HZ, 'pcc-t1'),
      failureOf(client(slow12.url, 5_000, 10_000).getPeerConnection(HZ, 'pcc-t1')),
    ]);
    const elapsedMs = performance.now() - started;
    expect(ok?.id).toBe('pcc-t1');
    expect(failed.failure).toMatchObject({ kind: 'transient', code: 'Timeout' });
    // The answer was given up on at the read timeout, not at the connect timeout and not at the answer.
    expect(elapsedMs).toBeGreaterThanOrEqual(9_900);
    expect(elapsedMs).toBeLessThan(12_000);
    // Both calls reached the server: the connection was made, it is the answer that was slow.
    // (The emulator logs a call once it has answered, so the 12 s one shows up after the client gave up.)
    const logged = async (emu: RunningEmulator) => (await createEmulatorAdmin(emu.url).getCalls({ action: 'GetVpcPeerConnectionAttribute' })).calls.length;
    expect(await logged(slow6)).toBe(1);
    expect(await eventually(async () => ((await logged(slow12)) > 0 ? logged(slow12) : undefined), 10_000)).toBe(1);
  }, 40_000);

  it('a reused keep-alive connection gets the read timeout too, not the connect timeout', async () => {
    const api = client(slow6.url, 2_000, 10_000);
    expect((await api.getPeerConnection(HZ, 'pcc-t1'))?.id).toBe('pcc-t1');
    expect((await api.getPeerConnection(HZ, 'pcc-t1'))?.id).toBe('pcc-t1');
  }, 40_000);

  describe('a connection that is never accepted', () => {
    let listener: ChildProcess;
    let port = 0;
    const fillers: net.Socket[] = [];

    beforeAll(async () => {
      // A listening socket with backlog 0 that never accepts: once its queue is full, SYNs are dropped and a
      // connect stalls (loopback only).
      listener = spawn('python3', ['-c', [
        'import socket, sys, time',
        's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
        'print(s.getsockname()[1], flush=True)',
        'time.sleep(120)',
      ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
      port = await new Promise<number>((resolve, reject) => {
        listener.stdout?.once('data', (b: Buffer) => resolve(Number(b.toString().trim())));
        listener.once('error', reject);
      });
      // Fill the accept queue; each filler completes its handshake or stalls, either is fine.
      for (let i = 0; i < 4; i++) fillers.push(net.connect(port, '127.0.0.1').on('error', () => undefined));
      await new Promise((resolve) => setTimeout(resolve, 300));
    });
    afterAll(() => {
      for (const s of fillers) s.destroy();
      if (listener.pid !== undefined) listener.kill('SIGKILL');
    });

    it('fails as a timeout after the connect timeout, long before the read timeout', async () => {
      const started = performance.now();
      const failed = await failureOf(client(`http://127.0.0.1:${port}`, 1_000, 20_000).getPeerConnection(HZ, 'pcc-t1'));
      const elapsedMs = performance.now() - started;
      expect(failed.failure).toMatchObject({ kind: 'transient', code: 'Timeout' });
      expect(elapsedMs).toBeGreaterThanOrEqual(900);
      expect(elapsedMs).toBeLessThan(10_000);
    }, 30_000);
  });
});
