// One policy in one region through the stages: discovery -> match -> plan. Shared by the scan job and `plan`.
import type { CloudApi } from '../cloud/types.js';
import { discoverPages, type DiscoveryCursor, type PageRetry } from '../discovery/index.js';
import { tagKeyProblem, type Batch, type Removal, type Resource } from '../model.js';
import { createBatchPlanner, createRecentIds, type CallFloor, type Packing } from '../planner/index.js';
import { matchResource, nameableWhenAbsent, type CompiledPolicy, type PolicyFinding } from '../policy/index.js';

export interface RegionPlan {
  scanned: number;
  /** Resources with something to remove. */
  violating: number;
  /** (resource, key) pairs to remove; all=true counts the tags carried. */
  tagsPlanned: number;
  /** The planned batches; empty when they were handed to `onBatches` instead. */
  batches: Batch[];
  /** UnTagResources calls planned (the batches' count). */
  calls: number;
  /** The fewest calls these removals need, whatever the packing. */
  floor: CallFloor;
}

/**
 * Match and plan, page by page, for one policy in one region. Deterministic: the same pages (or the same
 * removals replayed) in the same order give the same batches with the same IDs, which is what lets a scan that
 * died mid-way rebuild its planner from its log and go on from the page after the last one it recorded.
 */
export interface RegionPlanner {
  /** Matches one page's resources and plans their removals; returns the removals and the batches now complete. */
  addPage(resources: readonly Resource[], onResource?: (resource: Resource, removal: Removal | null) => void): { removals: Removal[]; batches: Batch[] };
  /** Plans removals recorded earlier (a scan's log), as addPage did for them; returns the batches now complete. */
  replay(removals: readonly Removal[], scanned: number): Batch[];
  /** The batches still open, once discovery has ended. */
  finish(): Batch[];
  readonly scanned: number;
  readonly violating: number;
  readonly tagsPlanned: number;
  readonly floor: CallFloor;
}

/** A carried key the policy would remove but no UnTagResources call can name (over 128 code points, a URL in it). */
export interface UnsendableKey {
  readonly resourceId: string;
  readonly key: string;
  /** What is wrong with it, e.g. `is 129 characters long; at most 128 are allowed`. */
  readonly problem: string;
}

/** The unsendable keys of one policy in one region, one entry per distinct key (a finding or log line each). */
export interface UnsendableTally {
  /** Records one (resource, key); true the first time this key is seen. */
  add(u: UnsendableKey): boolean;
  /** One warning finding per distinct key, at the policy's file and line. */
  findings(policy: CompiledPolicy, region: string): PolicyFinding[];
  readonly size: number;
}

export function createUnsendableTally(): UnsendableTally {
  const byKey = new Map<string, { problem: string; resources: number; first: string }>();
  return {
    add(u) {
      const seen = byKey.get(u.key);
      if (seen) {
        seen.resources += 1;
        return false;
      }
      byKey.set(u.key, { problem: u.problem, resources: 1, first: u.resourceId });
      return true;
    },
    findings(policy, region) {
      return [...byKey].map(([key, k]) => ({
        file: policy.source.file,
        line: policy.source.line,
        column: 1,
        path: 'spec.remove',
        message: `tag key ${JSON.stringify(key)} ${k.problem}: no UnTagResources call can name it, so it is skipped on ${k.resources} connection(s) in ${region} (first ${k.first}); their other keys are removed`,
        severity: 'warning' as const,
        stage: 'meaning' as const,
        policy: policy.name,
      }));
    },
    get size() {
      return byKey.size;
    },
  };
}

/**
 * Drops the keys of `removal` that no call can name, reporting each; the rest of the removal goes on (null when
 * nothing is left). An all=true removal names no key, so it is never cut.
 */
function sendable(removal: Removal | null, onUnsendable: ((u: UnsendableKey) => void) | undefined): Removal | null {
  if (!removal || removal.all) return removal;
  let keys: string[] | undefined;
  for (const [i, key] of removal.keys.entries()) {
    const problem = tagKeyProblem(key);
    if (problem === undefined) {
      keys?.push(key);
      continue;
    }
    keys ??= removal.keys.slice(0, i);
    onUnsendable?.({ resourceId: removal.resourceId, key, problem });
  }
  if (keys === undefined) return removal;
  return keys.length === 0 ? null : { ...removal, keys };
}

export function createRegionPlanner(
  policy: CompiledPolicy,
  region: string,
  options: { runId: string; now: Date; packing?: Packing; onUnsendable?: (u: UnsendableKey) => void },
): RegionPlanner {
  const planner = createBatchPlanner(
    { policy: policy.name, region, runId: options.runId },
    { packing: options.packing ?? 'union', nameableWhenAbsent: (key) => nameableWhenAbsent(policy, key) },
  );
  let scanned = 0;
  // A listing may repeat a row (on a page, or across pages): a removal of a resource among the last 10,000
  // planned is dropped, and the planner refuses one still in an open batch. Replay feeds the same removals in
  // the same order, so a scan rebuilt from its log remembers what it remembered.
  const recent = createRecentIds();
  return {
    addPage(resources, onResource) {
      const removals: Removal[] = [];
      for (const resource of resources) {
        scanned += 1;
        const removal = sendable(matchResource(policy, resource, options.now), options.onUnsendable);
        onResource?.(resource, removal);
        if (removal && !recent.seen(removal.resourceId) && planner.add(removal)) removals.push(removal);
      }
      return { removals, batches: planner.drain() };
    },
    replay(removals, pageScanned) {
      scanned += pageScanned;
      for (const removal of removals) if (!recent.seen(removal.resourceId)) planner.add(removal);
      return planner.drain();
    },
    finish() {
      planner.finish();
      return planner.drain();
    },
    get scanned() {
      return scanned;
    },
    get violating() {
      return planner.resourceCount;
    },
    get tagsPlanned() {
      return planner.tagCount;
    },
    get floor() {
      return planner.floor;
    },
  };
}

/**
 * Discovers, matches and plans one policy in one region: the read-only heart of `tagwarden plan` (the scan job
 * drives a RegionPlanner itself, page by page, to log and enqueue as it goes). Holds only the planned batches,
 * never the estate; with `onBatches` not even those: each batch is handed over as soon as the planner emits it
 * (full ones while discovery pages, the rest at the end).
 */
export async function planRegion(
  cloud: CloudApi,
  policy: CompiledPolicy,
  region: string,
  options: {
    runId: string;
    now: Date;
    retry: PageRetry;
    packing?: Packing;
    onRemoval?: (removal: Removal) => void;
    /** Every discovered resource, with what it loses (null: nothing): for `plan`'s diff. */
    onResource?: (resource: Resource, removal: Removal | null) => void;
    onScanned?: (scanned: number) => void;
    onBatches?: (batches: Batch[]) => void;
    /** Each carried key the policy would remove that no call can name: skipped, the rest goes on. */
    onUnsendable?: (u: UnsendableKey) => void;
    /** Start after this page instead of from the beginning. */
    from?: DiscoveryCursor;
  },
): Promise<RegionPlan> {
  const planner = createRegionPlanner(policy, region, options);
  let calls = 0;
  const kept: Batch[] = [];
  const handOver = (batches: Batch[]) => {
    calls += batches.length;
    if (batches.length === 0) return;
    if (options.onBatches) options.onBatches(batches);
    else kept.push(...batches);
  };
  let reported = 0;
  for await (const page of discoverPages(cloud, policy, region, options.retry, options.from)) {
    const { removals, batches } = planner.addPage(page.items, options.onResource);
    if (options.onRemoval) for (const r of removals) options.onRemoval(r);
    handOver(batches);
    if (planner.scanned - reported >= 1000) {
      reported = planner.scanned - (planner.scanned % 1000);
      options.onScanned?.(reported);
    }
  }
  options.onScanned?.(planner.scanned);
  handOver(planner.finish());
  return { scanned: planner.scanned, violating: planner.violating, tagsPlanned: planner.tagsPlanned, batches: kept, calls, floor: planner.floor };
}
