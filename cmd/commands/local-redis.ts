// Finds a Redis for local runs: REDIS_URL or 127.0.0.1:6379 when it answers, else a private redis-server.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

async function answers(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return true;
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface LocalRedis {
  url: string;
  /** Stops the redis-server this process started, if any. */
  stop(): void;
}

/**
 * Returns a Redis to use: `REDIS_URL` (or the default) when it answers; otherwise starts `redis-server` on a
 * free port with nothing kept on disk. Throws with instructions when neither is possible.
 */
export async function findOrStartRedis(url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'): Promise<LocalRedis> {
  if (await answers(url)) return { url, stop: () => undefined };
  if (process.env.REDIS_URL) throw new Error(`REDIS_URL does not answer; start that Redis or unset REDIS_URL`);
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    throw new Error(
      'no Redis answers on 127.0.0.1:6379 and redis-server is not installed: install it (apt-get install -y redis-server, brew install redis) or set REDIS_URL',
    );
  }
  const port = await freePort();
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const local = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50; i++) {
    if (await answers(local)) return { url: local, stop: () => void child.kill('SIGTERM') };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start');
}
