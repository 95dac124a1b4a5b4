// The record of API calls (bounded, oldest dropped first) and the running counters behind /_emulator/stats.
// Must not decide anything about a call: it only remembers what the server did.
import type { CallCounters, CallRecord, EmulatorStats } from './types.js';

/** A bounded, append-only log of calls; `seq` increases by one per call and survives `clear()`. */
export class CallLog {
  private records: CallRecord[] = [];
  private head = 0;
  private droppedCount = 0;
  private lastSeq = 0;

  constructor(private readonly max: number) {}

  nextSeq(): number {
    return ++this.lastSeq;
  }

  get dropped(): number {
    return this.droppedCount;
  }

  get size(): number {
    return this.records.length - this.head;
  }

  push(record: CallRecord): void {
    if (this.max <= 0) {
      this.droppedCount++;
      return;
    }
    this.records.push(record);
    if (this.records.length - this.head > this.max) {
      this.head++;
      this.droppedCount++;
      if (this.head >= 4096 && this.head * 2 >= this.records.length) {
        this.records = this.records.slice(this.head);
        this.head = 0;
      }
    }
  }

  /** Records with seq > since (oldest first), optionally of one action, at most `limit`. */
  *select(filter: { action?: string; since?: number; limit?: number } = {}): Generator<CallRecord> {
    let lo = this.head;
    let hi = this.records.length;
    const since = filter.since ?? 0;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.records[mid]?.seq ?? 0) <= since) lo = mid + 1;
      else hi = mid;
    }
    let left = filter.limit ?? Number.POSITIVE_INFINITY;
    for (let i = lo; i < this.records.length && left > 0; i++) {
      const r = this.records[i];
      if (r === undefined || (filter.action !== undefined && r.action !== filter.action)) continue;
      left--;
      yield r;
    }
  }

  clear(): void {
    this.records = [];
    this.head = 0;
    this.droppedCount = 0;
  }
}

function counters(): CallCounters {
  return { total: 0, codes: {}, applied: 0, replayed: 0, tagsRemoved: 0, tagsAdded: 0 };
}

function count(c: CallCounters, r: CallRecord): void {
  c.total++;
  c.codes[r.code] = (c.codes[r.code] ?? 0) + 1;
  if (r.applied) c.applied++;
  if (r.replayed) c.replayed++;
  c.tagsRemoved += r.removed;
  c.tagsAdded += r.added;
}

/** Running totals by action, code and region. */
export class CallStats {
  private all = counters();
  private byAction = new Map<string, CallCounters>();
  private byRegion = new Map<string, CallCounters & { byAction: Record<string, CallCounters> }>();
  private faults: Record<string, number> = {};

  record(r: CallRecord): void {
    count(this.all, r);
    let a = this.byAction.get(r.action);
    if (a === undefined) this.byAction.set(r.action, (a = counters()));
    count(a, r);
    let g = this.byRegion.get(r.region);
    if (g === undefined) this.byRegion.set(r.region, (g = { ...counters(), byAction: {} }));
    count(g, r);
    count((g.byAction[r.action] ??= counters()), r);
    if (r.fault !== null) this.faults[r.fault] = (this.faults[r.fault] ?? 0) + 1;
  }

  reset(): void {
    this.all = counters();
    this.byAction = new Map();
    this.byRegion = new Map();
    this.faults = {};
  }

  snapshot(resources: Record<string, number>): EmulatorStats {
    const tagsRemovedByRegion: Record<string, number> = {};
    for (const [region, c] of this.byRegion) if (c.tagsRemoved > 0) tagsRemovedByRegion[region] = c.tagsRemoved;
    return structuredClone({
      ...this.all,
      byAction: Object.fromEntries(this.byAction),
      byRegion: Object.fromEntries(this.byRegion),
      tagsRemovedByRegion,
      faults: this.faults,
      resources,
    });
  }
}
