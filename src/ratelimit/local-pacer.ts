// An in-process pacer for read-only commands (`plan`) that run without Redis: the same quota arithmetic,
// one process only.
import { API_NAMES, type ApiName } from '../model.js';

export interface LocalPacer {
  /** Waits until a call of `api` in `region` fits the paced rate. */
  acquire(region: string, api: ApiName): Promise<void>;
}

/** Spaces calls evenly at fraction x quota per window, per (region, API). */
export function createLocalPacer(options: {
  quotas: Readonly<Record<ApiName, number>>;
  windowMs: number;
  fraction: number;
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
}): LocalPacer {
  const clock = options.clock ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const intervals = Object.fromEntries(
    API_NAMES.map((api) => [api, options.windowMs / Math.max(1, Math.floor(options.quotas[api] * options.fraction))]),
  ) as Record<ApiName, number>;
  const next = new Map<string, number>();
  return {
    async acquire(region, api) {
      const key = `${region}|${api}`;
      const now = clock();
      const at = Math.max(now, next.get(key) ?? now);
      next.set(key, at + intervals[api]);
      if (at > now) await sleep(at - now);
    },
  };
}
