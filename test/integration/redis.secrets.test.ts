// The Redis password never reaches the output: a wrong password at start, a password rotated under a running
// daemon, and the producer library with a wrong password. ioredis errors carry the AUTH arguments; an error
// event without a listener is printed raw (with them) by ioredis or BullMQ.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { REPO_ROOT, daemonPort, eventually, spawnTagwarden, tagwardenEnv, temporaryTagsPolicy, uniquePrefix, writePolicies, type TagwardenProcess } from '../support/harness.js';

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

/** A private redis-server with a password, stopped by PID. */
async function startPasswordRedis(password: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', password], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${seen}`)), 20_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      if (/Ready to accept connections/.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', () => reject(new Error(`redis-server exited: ${seen}`)));
  });
  return { port, child };
}

interface ErrorLine {
  source: string;
  err: { message: string };
  timestamp: string;
  repeated?: number;
}

function errorLines(lines: readonly string[]): ErrorLine[] {
  return lines.filter((l) => l.includes('"message":"redis connection error"')).map((l) => JSON.parse(l) as ErrorLine);
}

describe('Redis connection errors are logged redacted, never raw', () => {
  const stops: Array<() => void | Promise<void>> = [];
  let emulator: RunningEmulator | undefined;
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
    await emulator?.close();
    emulator = undefined;
  });

  async function setup() {
    const password = `pw-${randomBytes(10).toString('hex')}`;
    const redis = await startPasswordRedis(password);
    stops.push(() => {
      redis.child.kill('SIGKILL');
    });
    emulator = await startEmulator({ generate: { count: 5, seed: 3, regions: ['cn-hangzhou'] } });
    return { password, port: redis.port, emulatorUrl: emulator.url };
  }

  function track(proc: TagwardenProcess): TagwardenProcess {
    stops.push(() => {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
    });
    return proc;
  }

  it('a wrong password at start prints neither the password nor a raw stack', async () => {
    const { port, emulatorUrl } = await setup();
    const wrong = `wrong-${randomBytes(10).toString('hex')}`;
    const env = tagwardenEnv({
      emulatorUrl,
      prefix: uniquePrefix('redis-pw'),
      regions: ['cn-hangzhou'],
      redisUrl: `redis://:${wrong}@127.0.0.1:${port}`,
      extra: { TAGWARDEN_POLICIES_DIR: writePolicies([temporaryTagsPolicy(['cn-hangzhou'])]) },
    });
    const daemon = track(spawnTagwarden(['run'], env));
    await daemon.waitFor(/"message":"redis connection error"/);
    await eventually(async () => (errorLines(daemon.lines).some((l) => l.source.startsWith('untag-')) ? true : undefined), 20_000);
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    const output = daemon.lines.join('\n');
    expect(output).not.toContain(wrong);
    expect(output).not.toMatch(/args:|\bat Decoder\b|ReplyError \[|\[ioredis\] Unhandled/);
    // Every non-empty line is either JSON from the redacting logger or the CLI's one-line `tagwarden:` error.
    for (const line of daemon.lines.filter(Boolean)) expect(line.startsWith('{') || line.startsWith('tagwarden: ')).toBe(true);

    // The CLI with the same wrong password (stopped once it has reported the error).
    const jobs = track(spawnTagwarden(['jobs', 'list'], env));
    await Promise.race([jobs.exited, jobs.waitFor(/redis connection error|WRONGPASS/).catch(() => undefined)]);
    jobs.child.kill('SIGKILL');
    await jobs.exited;
    expect(jobs.lines.join('\n')).not.toContain(wrong);
    expect(jobs.lines.join('\n')).not.toMatch(/args:|\bat Decoder\b/);
  });

  it('a password rotated under a running daemon: the old one is never printed and repeats are summarised', async () => {
    const { password, port, emulatorUrl } = await setup();
    const env = tagwardenEnv({
      emulatorUrl,
      prefix: uniquePrefix('redis-rot'),
      regions: ['cn-hangzhou'],
      redisUrl: `redis://:${password}@127.0.0.1:${port}`,
      extra: { TAGWARDEN_POLICIES_DIR: writePolicies([temporaryTagsPolicy(['cn-hangzhou'])]) },
    });
    const daemon = track(spawnTagwarden(['run'], env));
    const httpPort = await daemonPort(daemon);
    await eventually(async () => ((await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status === 200 ? true : undefined), 30_000);

    const admin = new Redis({ port, host: '127.0.0.1', password, lazyConnect: true, maxRetriesPerRequest: 1 });
    admin.on('error', () => undefined);
    await admin.connect();
    const rotated = `rotated-${randomBytes(10).toString('hex')}`;
    await admin.config('SET', 'requirepass', rotated);
    await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    admin.disconnect();

    await daemon.waitFor(/"message":"redis connection error"/);
    // The daemon reconnects every <= 2 s on each connection: wait for a line that folds repeats in.
    // (Fields in any order: the logger writes them as the call site gives them.)
    await daemon.waitFor(/^(?=.*"message":"redis connection error")(?=.*"repeated":\d)/);
    daemon.child.kill('SIGTERM');
    await daemon.exited;

    const output = daemon.lines.join('\n');
    expect(output).not.toContain(password);
    expect(output).not.toContain(rotated);
    expect(output).not.toMatch(/args:|\bat Decoder\b|\[ioredis\] Unhandled/);
    // Each source logs one error once per 10 s window (the next line carries the count of repeats folded in).
    const lastAt = new Map<string, number>();
    const gaps: Array<{ error: string; gapMs: number }> = [];
    for (const line of errorLines(daemon.lines)) {
      const key = `${line.source}: ${line.err.message}`;
      const at = Date.parse(line.timestamp);
      const previous = lastAt.get(key);
      if (previous !== undefined) gaps.push({ error: key, gapMs: at - previous });
      lastAt.set(key, at);
    }
    expect(lastAt.size).toBeGreaterThan(0);
    expect(gaps.filter((g) => g.gapMs < 10_000)).toEqual([]);
    expect(errorLines(daemon.lines).some((l) => (l.repeated ?? 0) > 0)).toBe(true);
    // Bounded by the waits above (readiness, then two 10 s windows of repeats): 60 s was too tight under load.
  }, 120_000);

  it('the producer library with a wrong password writes redacted JSON lines to stderr', async () => {
    const { port } = await setup();
    const wrong = `wrong-${randomBytes(10).toString('hex')}`;
    const script = `
      import { createProducer } from ${JSON.stringify(join(REPO_ROOT, 'dist/src/index.js'))};
      const producer = createProducer({ connection: process.env.URL, prefix: 'twtest-lib' });
      const t = setTimeout(() => { void producer.close().finally(() => process.exit(0)); }, 3000);
      producer.untag({ region: 'cn-hangzhou', resourceIds: ['pcc-a'], tagKeys: ['k'], reason: 'r' }).catch(() => undefined);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { PATH: process.env.PATH ?? '', URL: `redis://:${wrong}@127.0.0.1:${port}` }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    await new Promise((resolve) => child.on('exit', resolve));
    expect(out).toContain('redis connection error');
    expect(out).not.toContain(wrong);
    expect(out).not.toMatch(/args:|\bat Decoder\b|\[ioredis\] Unhandled/);
  });
});
