// Redis lost in the middle of a command, as a user meets it: the built CLI talks to a private redis-server (its own
// port and password, started and SIGKILLed by PID) and the server dies while `jobs list`, `enqueue` and
// `run --once` are at work. Each command fails within a few seconds with `cannot reach Redis at URL (password
// hidden)` and exit 1: no hang, no stack trace, no password. For the short commands a loopback relay in front of
// the server holds the command's first script call (EVALSHA) until the server is dead, so the loss falls
// mid-command every time rather than by luck of timing.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { createRedis } from '../../src/queue/index.js';
import { deadPort, sh, type Ran } from '../support/cli.js';
import { eventually, policyDoc, tagwardenEnv, writePolicies } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const id = (n: number) => `pcc-rl${String(n).padStart(16, '0')}`;

interface PrivateRedis {
  child: ChildProcess;
  port: number;
  password: string;
  kill(): Promise<void>;
}

async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await deadPort();
  const password = `lost-${randomBytes(8).toString('hex')}`;
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', password], { stdio: 'ignore' });
  const probe = createRedis(`redis://:${password}@127.0.0.1:${port}`, { logger: createMemoryLogger({ level: 'error', secrets: [password] }).logger });
  probe.on('error', () => undefined);
  try {
    await eventually(async () => ((await probe.ping()) === 'PONG' ? true : undefined), 15_000);
  } finally {
    probe.disconnect();
  }
  return {
    child,
    port,
    password,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      process.kill(child.pid!, 'SIGKILL');
      await exited;
    },
  };
}

/**
 * A loopback relay to the Redis: passes bytes both ways until a client sends a script call (EVALSHA, EVAL),
 * then holds that call, reports it, and from then on relays nothing. `cut()` closes every relayed socket and
 * stops listening, as a dead server's port answers.
 */
async function startRelay(upstreamPort: number) {
  const sockets = new Set<Socket>();
  let held = false;
  let onHeld: () => void = () => undefined;
  const heldCall = new Promise<void>((resolve) => (onHeld = resolve));
  const server: Server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: upstreamPort });
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.on('data', (chunk: Buffer) => {
      if (held) return;
      if (/\r\n(EVALSHA|EVAL)\r\n/i.test(chunk.toString('latin1'))) {
        held = true;
        onHeld();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!held) client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    heldCall,
    cut() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

function expectLostRedis(r: Ran, line: string, port: number, password: string): void {
  expect(r.code, `${line}\n${r.stderr.slice(-1500)}`).toBe(1);
  expect(r.stderr, line).toMatch(new RegExp(`^tagwarden: cannot reach Redis at redis://127\\.0\\.0\\.1:${port} \\(password hidden\\): .+`, 'm'));
  expect(r.stderr + r.stdout, line).not.toContain(password);
  expect(r.stderr, line).not.toMatch(/^\s+at /m);
}

describe('redis lost mid-command', () => {
  let redis: PrivateRedis | undefined;
  let emulator: RunningEmulator | undefined;
  afterEach(async () => {
    await redis?.kill();
    await emulator?.close();
    redis = undefined;
    emulator = undefined;
  });

  it('jobs list and enqueue fail within seconds, exit 1, when the server dies during their first script call', async () => {
    emulator = await startEmulator();
    const ids = Array.from({ length: 400 }, (_, i) => id(i + 1)).join(',');
    for (const line of ['tw jobs list --state waiting', `tw enqueue --region ${REGION} --resource-id ${ids} --tag-key FinanceDept`]) {
      redis = await startPrivateRedis();
      const relay = await startRelay(redis.port);
      const env = tagwardenEnv({ emulatorUrl: emulator.url, prefix: 'tw-lost', regions: [REGION], redisUrl: `redis://:${redis.password}@127.0.0.1:${relay.port}` });
      const running = sh(line, env, 30_000);
      await relay.heldCall;
      const killedAt = Date.now();
      await redis.kill();
      relay.cut();
      const r = await running;
      expectLostRedis(r, line, relay.port, redis.password);
      // Liveness bound, not a speed figure: the command must not wait for Redis to come back.
      expect(Date.now() - killedAt, line).toBeLessThan(15_000);
    }
  }, 120_000);

  it('run --once fails within seconds, exit 1, when the server dies while its batches run', async () => {
    const resources = Array.from({ length: 1000 }, (_, i) => ({ id: id(i + 1), region: REGION, tags: { FinanceDept: `cc-${i}`, owner: 'o' } }));
    emulator = await startEmulator({ fixture: { resources }, faults: { latencyMs: 300, actions: ['UnTagResources'] } });
    const admin = createEmulatorAdmin(emulator.url);
    redis = await startPrivateRedis();
    const dir = writePolicies([policyDoc('drop-finance', { regions: [REGION], remove: { keys: ['FinanceDept'] }, limits: { maxRemovalsPerRun: 100_000 } })]);
    const env = tagwardenEnv({
      emulatorUrl: emulator.url,
      prefix: 'tw-lost',
      regions: [REGION],
      redisUrl: `redis://:${redis.password}@127.0.0.1:${redis.port}`,
      extra: { TAGWARDEN_POLICIES_DIR: dir, TAGWARDEN_CONCURRENCY: '1' },
    });
    const running = sh('tw run --once', env, 60_000);
    await eventually(async () => ((await admin.getCalls({ action: 'UnTagResources' })).calls.length > 0 ? true : undefined), 30_000);
    const killedAt = Date.now();
    await redis.kill();
    const r = await running;
    expectLostRedis(r, 'tw run --once', redis.port, redis.password);
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    // It stopped: not every batch was sent (50 batches at one call at a time of 300 ms each outlast the bound).
    expect((await admin.getCalls({ action: 'UnTagResources' })).calls.length).toBeLessThan(50);
  }, 120_000);
});
