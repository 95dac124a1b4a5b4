// Scans at once per region in this process: the List quota is per (account, region), so scans of different
// regions never wait for each other, and scans of one region are bounded.
import { DelayedError, type Job } from 'bullmq';

/** How long a scan waits (delayed, its worker slot freed) before it tries its region's slot again. */
const RETRY_SLOT_MS = 1_000;

export interface RegionSlots {
  /** Takes a slot of `region`, or undefined when all are taken. */
  tryTake(region: string): (() => void) | undefined;
  /** Scans running in `region` now. */
  running(region: string): number;
}

export function createRegionSlots(perRegion: number): RegionSlots {
  const taken = new Map<string, number>();
  return {
    tryTake(region) {
      const n = taken.get(region) ?? 0;
      if (n >= perRegion) return undefined;
      taken.set(region, n + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (taken.get(region) ?? 1) - 1;
        if (left <= 0) taken.delete(region);
        else taken.set(region, left);
      };
    },
    running(region) {
      return taken.get(region) ?? 0;
    },
  };
}

/**
 * Runs `process` within a slot of the job's region. A scan whose region is full is moved to the delayed set for
 * a second (no attempt spent) rather than held: a worker slot is never held while waiting for a region's slot,
 * so scans of other regions keep starting.
 */
export function withRegionSlot<R>(
  slots: RegionSlots,
  regionOf: (job: Job) => string | undefined,
  process: (job: Job, token?: string) => Promise<R>,
  onWait?: (job: Job, region: string) => void,
): (job: Job, token?: string) => Promise<R> {
  return async (job, token) => {
    const region = regionOf(job);
    // An unreadable payload goes straight to the processor, which fails it with the reason.
    if (region === undefined) return process(job, token);
    const release = slots.tryTake(region);
    if (!release) {
      onWait?.(job, region);
      await job.moveToDelayed(Date.now() + RETRY_SLOT_MS, token);
      throw new DelayedError();
    }
    try {
      return await process(job, token);
    } finally {
      release();
    }
  };
}
