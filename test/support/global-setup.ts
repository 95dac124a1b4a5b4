// vitest global setup: first the system tools the tests need (test/support/system-tools.sh installs what is
// missing with apt-get, services kept from starting), then REDIS_URL or 127.0.0.1:6379 when it answers, else a
// private redis-server, so `npm ci && npm test` works on a fresh machine. Test files read REDIS_URL.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { findOrStartRedis } from '../../cmd/commands/local-redis.js';

const SYSTEM_TOOLS = fileURLToPath(new URL('./system-tools.sh', import.meta.url));

/** Runs system-tools.sh; a tool that cannot be installed fails the run here, with the reason, not a skipped test. */
export function ensureSystemTools(): void {
  const result = spawnSync('bash', [SYSTEM_TOOLS], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) {
    throw new Error(`test/support/system-tools.sh could not provide the system tools the tests need (exit ${String(result.status)}); see its message above`);
  }
}

export default async function setup(): Promise<() => void> {
  ensureSystemTools();
  const redis = await findOrStartRedis();
  process.env.REDIS_URL = redis.url;
  return () => redis.stop();
}
