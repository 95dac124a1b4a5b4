// A Redis server of the test's own (password, append-only file in a temp dir) that can be stopped and
// started again on the same data, for the Redis outage scenario.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRunning, stopProcess, track, type TrackedProcess } from './processes.js';

export interface TestRedis {
  readonly port: number;
  readonly password: string;
  /** `redis://:password@127.0.0.1:port`. */
  readonly url: string;
  /** Stops the server (SIGTERM: the append-only file is flushed). */
  stop(): Promise<void>;
  /** Starts it again on the same directory, so the append-only file restores the data. */
  start(): Promise<void>;
  /**
   * Stops it, deletes its data (the append-only file), and starts it again on the same port, empty: a Redis that
   * lost everything. `args` are extra redis-server arguments for this and later starts (e.g. an eviction policy).
   */
  restartEmpty(args?: readonly string[]): Promise<void>;
  /** Stops it and deletes its directory. */
  close(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export async function freePort(): Promise<number> {
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

/** Starts `redis-server` on a free port with a random password and appendonly yes. */
export async function startTestRedis(): Promise<TestRedis> {
  const port = await freePort();
  const password = `chaos-redis-${randomBytes(12).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'tw-chaos-redis-'));
  let current: TrackedProcess | undefined;
  let generation = 0;
  let extraArgs: readonly string[] = [];

  const start = async (): Promise<void> => {
    if (current && isRunning(current)) return;
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes',
      '--appendfsync', 'always', '--requirepass', password, '--daemonize', 'no', '--loglevel', 'notice', ...extraArgs,
    ];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let onLine: ((line: string) => void) | undefined;
    const collect = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        lines.push(line);
        onLine?.(line);
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    current = track({ name: `redis-server:${port}#${++generation}`, child, lines, exited });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${lines.join('\n')}`)), 20_000);
      onLine = (line) => {
        if (/Ready to accept connections/.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      };
      if (lines.some((l) => /Ready to accept connections/.test(l))) onLine('Ready to accept connections');
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited at start:\n${lines.join('\n')}`));
      });
    });
  };

  const stop = async (): Promise<void> => {
    if (current) await stopProcess(current, 20_000);
  };

  await start();
  return {
    port,
    password,
    url: `redis://:${password}@127.0.0.1:${port}`,
    start,
    stop,
    async restartEmpty(args = extraArgs) {
      await stop();
      for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
      extraArgs = args;
      await start();
    },
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
