// Exponential backoff with full jitter, capped: the retry delay of transient failures.

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/**
 * Returns BullMQ's backoff strategy: attempt n waits a uniform random time in [0, min(max, base * 2^(n-1))].
 * Full jitter spreads the retries of many replicas so they do not hit the API in step.
 */
export function jitteredBackoff(options: BackoffOptions, random: () => number = Math.random): (attemptsMade: number) => number {
  return (attemptsMade) => {
    const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attemptsMade - 1));
    return Math.floor(random() * ceiling);
  };
}
