// Where a secret could be kept or shown besides the processes' output: every key Redis holds under a prefix
// (job data, failedReason, stacktraces, return values, ledger, plans), and the output of every CLI command.
import type { RedisClient } from '../../../src/queue/redis.js';
import { spawnTagwarden } from '../../support/harness.js';

export interface Printed {
  source: string;
  text: string;
}

/** Every value stored under `prefix`, whatever its type, one entry per key. */
export async function redisContents(redis: RedisClient, prefix: string): Promise<Printed[]> {
  const out: Printed[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      let value: unknown;
      if (type === 'string') value = await redis.get(key);
      else if (type === 'hash') value = await redis.hgetall(key);
      else if (type === 'list') value = await redis.lrange(key, 0, -1);
      else if (type === 'set') value = await redis.smembers(key);
      else if (type === 'zset') value = await redis.zrange(key, '0', '-1');
      else if (type === 'stream') value = await redis.xrange(key, '-', '+');
      else continue;
      out.push({ source: `redis ${key}`, text: JSON.stringify(value) });
    }
  } while (cursor !== '0');
  return out;
}

/** Runs each CLI command with `env` and returns everything it printed (stdout and stderr), one entry per command. */
export async function cliOutputs(commands: readonly string[][], env: NodeJS.ProcessEnv): Promise<Array<Printed & { code: number | null }>> {
  const out: Array<Printed & { code: number | null }> = [];
  for (const args of commands) {
    const proc = spawnTagwarden(args, env);
    const { code } = await proc.exited;
    out.push({ source: `tagwarden ${args.join(' ')}`, text: proc.lines.join('\n'), code });
  }
  return out;
}
