// What every benchmark receives and returns, and small shared helpers (seeded PRNG, prefixes, Redis, sleeps).
// Must not start processes or servers: benchmarks do, through processes.ts, and clean up themselves.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiName } from '../../../src/model.js';
import { createRedis, type RedisClient } from '../../../src/queue/index.js';
import { cleanupPrefix, uniquePrefix } from '../../support/harness.js';
import type { TargetCheck } from './report.js';

export { sleep };

/** Settings of one benchmark run. */
export interface BenchContext {
  /** The small version: every benchmark in a few minutes overall. */
  readonly quick: boolean;
  readonly redisUrl: string;
}

/** What a benchmark hands back to the runner: its JSON document and its targets. */
export interface BenchOutcome {
  /** Parameters and figures, written to results/<name>.json with the machine info. */
  readonly result: Record<string, unknown>;
  readonly targets: TargetCheck[];
}

/** One benchmark: a name (also the results file), a title, and the function that runs it. */
export interface Benchmark {
  readonly name: string;
  readonly title: string;
  run(ctx: BenchContext): Promise<BenchOutcome>;
}

/** Quotas no run reaches (emulator and tagwarden config). */
export const HUGE_QUOTAS: Readonly<Record<ApiName, number>> = Object.freeze({
  UnTagResources: 1_000_000_000,
  TagResources: 1_000_000_000,
  ListTagResources: 1_000_000_000,
  ListVpcPeerConnections: 1_000_000_000,
  GetVpcPeerConnectionAttribute: 1_000_000_000,
});

/** The environment variables that give a tagwarden process these quotas. */
export function quotaEnv(quotas: Readonly<Partial<Record<ApiName, number>>>): Record<string, string> {
  return Object.fromEntries(Object.entries(quotas).map(([api, n]) => [`TAGWARDEN_QUOTA_${api.toUpperCase()}`, String(n)]));
}

/** A Redis prefix for a benchmark, deleted by `withPrefix` afterwards. */
export async function withPrefix<T>(name: string, redisUrl: string, fn: (prefix: string) => Promise<T>): Promise<T> {
  const prefix = uniquePrefix(`bench-${name}`);
  try {
    return await fn(prefix);
  } finally {
    await cleanupPrefix(prefix, redisUrl);
  }
}

/** A Redis connection closed after `fn`. */
export async function withRedis<T>(redisUrl: string, fn: (redis: RedisClient) => Promise<T>): Promise<T> {
  const redis = createRedis(redisUrl, { connectionName: 'tagwarden-bench' });
  try {
    return await fn(redis);
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

/** Polls `check` until it returns a value, or throws after `timeoutMs` with `what` in the message. */
export async function waitUntil<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** A small seeded PRNG (mulberry32): the same seed gives the same estate. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** Resource ids of the benchmarks: `pcc-` + a tag + a zero-padded base-36 number (valid connection IDs). */
export function benchId(tag: string, n: number): string {
  return `pcc-${tag}${n.toString(36).padStart(8, '0')}`;
}
