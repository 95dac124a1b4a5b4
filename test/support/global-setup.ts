// vitest global setup: use REDIS_URL or 127.0.0.1:6379 when it answers, else start a private redis-server,
// so `npm test` works on a fresh machine that has the binary. Test files read REDIS_URL.
import { findOrStartRedis } from '../../cmd/commands/local-redis.js';

export default async function setup(): Promise<() => void> {
  const redis = await findOrStartRedis();
  process.env.REDIS_URL = redis.url;
  return () => redis.stop();
}
