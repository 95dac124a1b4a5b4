import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { TagwardenError } from '../../src/errors.js';
import { DOCUMENTED_QUOTAS, type ApiName } from '../../src/model.js';
import { createRateLimiter, type RateLimiterOptions } from '../../src/ratelimit/index.js';

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const API: ApiName = 'UnTagResources';

const opened: Redis[] = [];
const prefixes: string[] = [];

function connect(): Redis {
  const redis = new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 3 });
  opened.push(redis);
  return redis;
}

function options(overrides: Partial<RateLimiterOptions> = {}): RateLimiterOptions {
  const prefix = `tw-test-rl-${randomUUID()}`;
  prefixes.push(prefix);
  return {
    prefix,
    account: 'default',
    quotas: { ...DOCUMENTED_QUOTAS, UnTagResources: 20, ListTagResources: 20 },
    windowMs: 1000,
    fraction: 0.8,
    ...overrides,
  };
}

afterEach(async () => {
  const admin = opened[0] ?? connect();
  for (const prefix of prefixes.splice(0)) {
    const keys = await admin.keys(`${prefix}:*`);
    if (keys.length > 0) await admin.del(...keys);
  }
  await Promise.all(opened.splice(0).map((r) => r.quit()));
});

/** Most grants found in any half-open span [t, t + windowMs) starting at a grant. */
function maxInSlidingWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let j = 0;
  for (let i = 0; i < sorted.length; i++) {
    while (j < sorted.length && (sorted[j] as number) < (sorted[i] as number) + windowMs) j++;
    best = Math.max(best, j - i);
  }
  return best;
}

function maxInEpochWindow(times: readonly number[], windowMs: number): number {
  const counts = new Map<number, number>();
  for (const t of times) counts.set(Math.floor(t / windowMs), (counts.get(Math.floor(t / windowMs)) ?? 0) + 1);
  return Math.max(0, ...counts.values());
}

describe('global rate limiter on the real Redis', () => {
  it('never grants more than the quota in any window to concurrent acquirers on several connections', async () => {
    const opts = options();
    const limiters = [connect(), connect(), connect()].map((r) => createRateLimiter(r, opts));
    const total = 60;
    const grants: number[] = [];
    // Six acquirers, two per connection, race for one budget until 60 grants are handed out.
    await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const limiter = limiters[i % limiters.length];
        if (!limiter) throw new Error('no limiter');
        while (grants.length < total) {
          const { atMs } = await limiter.acquire('cn-hangzhou', API);
          grants.push(atMs);
        }
      }),
    );
    expect(grants.length).toBeGreaterThanOrEqual(total);
    expect(maxInSlidingWindow(grants, opts.windowMs)).toBeLessThanOrEqual(20);
    expect(maxInEpochWindow(grants, opts.windowMs)).toBeLessThanOrEqual(20);

    // Steady emission: any run of burst+1 grants spans at least one emission interval (1000 / 16 ms),
    // so the budget is never spent in one clump at the start of a window.
    const sorted = [...grants].sort((a, b) => a - b);
    const burst = 5; // min(ceil(16 per s), 20 - 16 + 1)
    for (let k = 0; k + burst < sorted.length; k++) {
      expect((sorted[k + burst] as number) - (sorted[k] as number)).toBeGreaterThanOrEqual(1000 / 16 - 0.001);
    }
  });

  it('penalize lowers the rate multiplicatively, counts a burst of throttles once, and floors at minFactor', async () => {
    const redis = connect();
    const limiter = createRateLimiter(redis, options({ recoverPerSecond: 0, penaltyCooldownMs: 60_000 }));
    expect(await limiter.state('cn-hangzhou', API)).toEqual({ perWindow: 16, factor: 1 });
    await limiter.penalize('cn-hangzhou', API);
    await limiter.penalize('cn-hangzhou', API);
    expect(await limiter.state('cn-hangzhou', API)).toEqual({ perWindow: 8, factor: 0.5 });

    const floored = createRateLimiter(redis, options({ recoverPerSecond: 0, penaltyCooldownMs: 0, minFactor: 0.2 }));
    for (let i = 0; i < 5; i++) await floored.penalize('cn-hangzhou', API);
    expect((await floored.state('cn-hangzhou', API)).factor).toBeCloseTo(0.2, 6);
  });

  it('grants fewer calls per window after penalize', async () => {
    const redis = connect();
    const opts = options({ recoverPerSecond: 0 });
    const limiter = createRateLimiter(redis, opts);
    await limiter.penalize('cn-hangzhou', API);
    const grants: number[] = [];
    while (grants.length < 20) grants.push((await limiter.acquire('cn-hangzhou', API)).atMs);
    // Interval 125 ms, tolerance 4 x 62.5 ms: any second holds at most floor((1000 + 250) / 125) + 1 = 11.
    expect(maxInSlidingWindow(grants, opts.windowMs)).toBeLessThanOrEqual(11);
    const sorted = [...grants].sort((a, b) => a - b);
    for (let k = 0; k + 3 < sorted.length; k++) {
      // Any 3 intervals at 125 ms minus the 250 ms tolerance: at least 125 ms apart.
      expect((sorted[k + 3] as number) - (sorted[k] as number)).toBeGreaterThanOrEqual(125 - 0.001);
    }
  });

  it('recovers the factor gradually back to 1', async () => {
    const redis = connect();
    const limiter = createRateLimiter(redis, options({ recoverPerSecond: 2, penaltyCooldownMs: 0 }));
    await limiter.penalize('cn-hangzhou', API);
    await limiter.penalize('cn-hangzhou', API);
    let previous = (await limiter.state('cn-hangzhou', API)).factor;
    expect(previous).toBeLessThan(1);
    const seen: number[] = [previous];
    while (previous < 1) {
      await new Promise((r) => setTimeout(r, 20));
      const { factor, perWindow } = await limiter.state('cn-hangzhou', API);
      expect(factor).toBeGreaterThanOrEqual(previous);
      expect(perWindow).toBeCloseTo(16 * factor, 3);
      seen.push(factor);
      previous = factor;
    }
    // Gradual: it passed through intermediate values rather than jumping back.
    expect(seen.some((f) => f > seen[0]! && f < 1)).toBe(true);
  });

  it('honours Retry-After: no grant before the server said', async () => {
    const redis = connect();
    const limiter = createRateLimiter(redis, options({ recoverPerSecond: 0 }));
    const [sec, usec] = await redis.time();
    const before = Number(sec) * 1000 + Number(usec) / 1000;
    await limiter.penalize('cn-hangzhou', API, 300);
    const denied = await limiter.tryAcquire('cn-hangzhou', API);
    expect(denied.ok).toBe(false);
    if (!denied.ok) expect(denied.retryInMs).toBeLessThanOrEqual(300);
    const { atMs } = await limiter.acquire('cn-hangzhou', API);
    expect(atMs).toBeGreaterThanOrEqual(before + 300);
  });

  it('keeps regions and APIs independent', async () => {
    const redis = connect();
    const limiter = createRateLimiter(redis, options({ recoverPerSecond: 0 }));
    let exhausted = false;
    for (let i = 0; i < 100 && !exhausted; i++) exhausted = !(await limiter.tryAcquire('cn-hangzhou', API)).ok;
    expect(exhausted).toBe(true);
    await limiter.penalize('cn-hangzhou', API);

    expect((await limiter.tryAcquire('cn-shanghai', API)).ok).toBe(true);
    expect((await limiter.tryAcquire('cn-hangzhou', 'ListTagResources')).ok).toBe(true);
    expect(await limiter.state('cn-shanghai', API)).toEqual({ perWindow: 16, factor: 1 });
    expect(await limiter.state('cn-hangzhou', 'ListTagResources')).toEqual({ perWindow: 16, factor: 1 });
    expect((await limiter.state('cn-hangzhou', API)).factor).toBe(0.5);
  });

  it('tryAcquire reports a retry delay within one emission interval, after which a slot is free', async () => {
    const redis = connect();
    const limiter = createRateLimiter(redis, options());
    let denied: { ok: false; retryInMs: number } | undefined;
    for (let i = 0; i < 100 && !denied; i++) {
      const r = await limiter.tryAcquire('cn-beijing', API);
      if (!r.ok) denied = r;
    }
    expect(denied).toBeDefined();
    expect(denied!.retryInMs).toBeGreaterThanOrEqual(1);
    expect(denied!.retryInMs).toBeLessThanOrEqual(Math.ceil(1000 / 16));
    await new Promise((r) => setTimeout(r, denied!.retryInMs));
    expect((await limiter.tryAcquire('cn-beijing', API)).ok).toBe(true);
  });

  it('expires idle keys, rejects bad options, and reloads its script after SCRIPT FLUSH', async () => {
    const redis = connect();
    const opts = options();
    const limiter = createRateLimiter(redis, opts);
    await limiter.tryAcquire('cn-hangzhou', API);
    const keys = await redis.keys(`${opts.prefix}:*`);
    expect(keys).toHaveLength(1);
    const ttl = await redis.pttl(keys[0]!);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(opts.windowMs + 1000 + 100);

    await redis.script('FLUSH');
    expect((await limiter.state('cn-hangzhou', API)).factor).toBe(1);

    expect(() => createRateLimiter(redis, options({ fraction: 0 }))).toThrow(TagwardenError);
    expect(() =>
      createRateLimiter(redis, options({ quotas: { ...DOCUMENTED_QUOTAS, UnTagResources: 0 } })),
    ).toThrow(/invalid rate limiter options/);
  });

  it('rejects a waiting acquire when its signal aborts', async () => {
    const redis = connect();
    const limiter = createRateLimiter(redis, options({ recoverPerSecond: 0 }));
    await limiter.penalize('cn-hangzhou', API, 10_000);
    const controller = new AbortController();
    const waiting = limiter.acquire('cn-hangzhou', API, controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
  });
});
