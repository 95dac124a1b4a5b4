// The global rate limiter: one GCRA state per (account, region, API) in Redis, shared by every replica.
import { TagwardenError } from '../errors.js';
import { API_NAMES, type ApiName } from '../model.js';
import { GCRA_SCRIPT } from './gcra-script.js';
import { cachedScript, type RedisClient } from '../queue/redis.js';
import { accountTag } from '../queue/names.js';

/** How much of which quota to use, and how to adapt to throttling. */
export interface RateLimiterOptions {
  /** Redis key prefix, e.g. `tagwarden`. */
  readonly prefix: string;
  /** Scope label of the quota owner (the Alibaba account), e.g. `default`. */
  readonly account: string;
  /** Calls per window per (account, region, API); documented values are DOCUMENTED_QUOTAS. */
  readonly quotas: Readonly<Record<ApiName, number>>;
  /** Quota window, 60000 for the documented quotas. */
  readonly windowMs: number;
  /** Share of the quota to use (0-1], default 0.95 (TAGWARDEN_QUOTA_FRACTION; see README "The default quota fraction"). */
  readonly fraction?: number;
  /** Floor of the adaptive factor, default 0.1. */
  readonly minFactor?: number;
  /** Factor regained per second after a throttle, default 0.02 (from 0.5 back to 1 in 25 s). */
  readonly recoverPerSecond?: number;
  /** Factor multiplier on each throttle, default 0.5. */
  readonly penaltyMultiplier?: number;
  /** Throttles within this span of the last halving count once; default min(1000, windowMs / 10). */
  readonly penaltyCooldownMs?: number;
  /**
   * Grants allowed back to back after idling. Default: one second's worth of the rate. Always capped
   * so that fraction * quota + burst - 1 <= quota, which keeps every window within the quota.
   */
  readonly burst?: number;
}

/** Result of one non-blocking attempt. `atMs` is the Redis server time of the grant (epoch ms, µs precision). */
export type AcquireResult = { ok: true; atMs: number } | { ok: false; retryInMs: number };

/** A quota shared through Redis by every caller of one (account, region, API). */
export interface RateLimiter {
  /** Takes a slot now, or says how long until one may be free. */
  tryAcquire(region: string, api: ApiName): Promise<AcquireResult>;
  /** Waits for a slot; rejects with `signal.reason` when aborted. */
  acquire(region: string, api: ApiName, signal?: AbortSignal): Promise<{ atMs: number }>;
  /** Reports a throttle: the rate drops multiplicatively; with `retryAfterMs`, no grant before then. */
  penalize(region: string, api: ApiName, retryAfterMs?: number): Promise<void>;
  /** The current calls per window (fraction * factor * quota) and the adaptive factor. */
  state(region: string, api: ApiName): Promise<{ perWindow: number; factor: number }>;
}

interface Resolved {
  readonly fraction: number;
  readonly minFactor: number;
  readonly recoverPerUs: number;
  readonly multiplier: number;
  readonly cooldownUs: number;
  readonly windowUs: number;
  readonly bursts: Readonly<Record<ApiName, number>>;
}

function resolve(options: RateLimiterOptions): Resolved {
  const problems: string[] = [];
  const fraction = options.fraction ?? 0.95;
  const minFactor = options.minFactor ?? 0.1;
  const recoverPerSecond = options.recoverPerSecond ?? 0.02;
  const multiplier = options.penaltyMultiplier ?? 0.5;
  const cooldownMs = options.penaltyCooldownMs ?? Math.min(1000, options.windowMs / 10);
  if (!(options.windowMs > 0) || !Number.isFinite(options.windowMs)) problems.push('windowMs must be > 0');
  if (!(fraction > 0 && fraction <= 1)) problems.push('fraction must be in (0, 1]');
  if (!(minFactor > 0 && minFactor <= 1)) problems.push('minFactor must be in (0, 1]');
  if (!(recoverPerSecond >= 0) || !Number.isFinite(recoverPerSecond)) problems.push('recoverPerSecond must be >= 0');
  if (!(multiplier > 0 && multiplier <= 1)) problems.push('penaltyMultiplier must be in (0, 1]');
  if (!(cooldownMs >= 0)) problems.push('penaltyCooldownMs must be >= 0');
  if (options.prefix === '' || options.account === '') problems.push('prefix and account must be non-empty');
  const bursts = {} as Record<ApiName, number>;
  for (const api of API_NAMES) {
    const quota = options.quotas[api];
    if (!(Number.isInteger(quota) && quota >= 1)) {
      problems.push(`quotas.${api} must be an integer >= 1`);
      continue;
    }
    const rate = fraction * quota;
    const cap = Math.max(1, quota - Math.ceil(rate) + 1);
    const wanted = options.burst ?? Math.ceil((rate * 1000) / options.windowMs);
    bursts[api] = Math.max(1, Math.min(Math.floor(wanted), cap));
  }
  if (problems.length > 0) {
    throw new TagwardenError('CONFIG_INVALID', 'invalid rate limiter options', { details: { problems } });
  }
  return {
    fraction,
    minFactor,
    recoverPerUs: recoverPerSecond / 1e6,
    multiplier,
    cooldownUs: cooldownMs * 1000,
    windowUs: options.windowMs * 1000,
    bursts,
  };
}

const gcra = cachedScript(GCRA_SCRIPT);

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolvePromise();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Creates the limiter. Every decision runs as one Lua script on Redis server time, so all replicas
 * share one budget per (account, region, API) and regions and APIs never slow each other down.
 * In any window of `windowMs` (sliding, hence also epoch-aligned) the grants never exceed the quota.
 */
export function createRateLimiter(redis: RedisClient, options: RateLimiterOptions): RateLimiter {
  const cfg = resolve(options);
  const keyOf = (region: string, api: ApiName): string => `${options.prefix}:ratelimit:${accountTag(options.account)}:${region}:${api}`;

  async function run(op: 'acquire' | 'penalize' | 'state', region: string, api: ApiName, retryAfterUs = 0): Promise<string[]> {
    const args = [
      op,
      options.quotas[api],
      cfg.fraction,
      cfg.windowUs,
      cfg.minFactor,
      cfg.recoverPerUs,
      cfg.bursts[api],
      Math.max(0, Math.round(retryAfterUs)),
      cfg.cooldownUs,
      cfg.multiplier,
    ].map(String);
    const key = keyOf(region, api);
    const reply = await gcra(redis, [key], args);
    if (!Array.isArray(reply) || reply.length < 5) throw new Error('rate limiter script returned an unexpected reply');
    return reply.map(String);
  }

  async function tryAcquire(region: string, api: ApiName): Promise<AcquireResult> {
    const [granted, nowUs, waitUs] = await run('acquire', region, api);
    if (granted === '1') return { ok: true, atMs: Number(nowUs) / 1000 };
    return { ok: false, retryInMs: Math.max(1, Math.ceil(Number(waitUs) / 1000)) };
  }

  async function acquire(region: string, api: ApiName, signal?: AbortSignal): Promise<{ atMs: number }> {
    for (;;) {
      if (signal?.aborted) throw signal.reason as Error;
      const result = await tryAcquire(region, api);
      if (result.ok) return { atMs: result.atMs };
      await sleep(result.retryInMs, signal);
    }
  }

  async function penalize(region: string, api: ApiName, retryAfterMs?: number): Promise<void> {
    await run('penalize', region, api, (retryAfterMs ?? 0) * 1000);
  }

  async function state(region: string, api: ApiName): Promise<{ perWindow: number; factor: number }> {
    const reply = await run('state', region, api);
    return { factor: Number(reply[3]), perWindow: Number(reply[4]) };
  }

  return { tryAcquire, acquire, penalize, state };
}
