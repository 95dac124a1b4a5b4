// A bounded memory of the latest resource IDs planned, to drop a row a listing repeated. Pure: no I/O, no clock.

/** How many of the latest planned IDs a (policy, region) scan remembers (about 1 MB, whatever the estate). */
export const REPEAT_WINDOW = 10_000;

export interface RecentIds {
  /** True when `id` is among the last `window` IDs remembered (a repeat); otherwise remembers it. */
  seen(id: string): boolean;
}

/**
 * Remembers the last `window` distinct IDs in order (a Set and a ring), evicting the oldest. Fed the same IDs in
 * the same order it answers the same, which keeps a scan rebuilt from its log deterministic.
 */
export function createRecentIds(window = REPEAT_WINDOW): RecentIds {
  const recent = new Set<string>();
  const ring = new Array<string | undefined>(window);
  let next = 0;
  return {
    seen(id) {
      if (recent.has(id)) return true;
      const evicted = ring[next];
      if (evicted !== undefined) recent.delete(evicted);
      ring[next] = id;
      next = (next + 1) % window;
      recent.add(id);
      return false;
    },
  };
}
