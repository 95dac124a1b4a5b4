// One policy in one region through the stages: discovery -> match -> plan. Shared by the scan job and `plan`.
import type { CloudApi } from '../cloud/types.js';
import { discover, type PageRetry } from '../discovery/index.js';
import type { Batch, Removal, Resource } from '../model.js';
import { createBatchPlanner, type CallFloor, type Packing } from '../planner/index.js';
import { matchResource, nameableWhenAbsent, type CompiledPolicy } from '../policy/index.js';

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
 * Discovers, matches and plans one policy in one region: the read-only heart of a scan, shared by the scan
 * job and `tagwarden plan`. Holds only the planned batches, never the estate; with `onBatches` not even those:
 * each batch is handed over as soon as the planner emits it (full ones while discovery pages, the rest at the end).
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
  },
): Promise<RegionPlan> {
  const planner = createBatchPlanner(
    { policy: policy.name, region, runId: options.runId },
    { packing: options.packing ?? 'union', nameableWhenAbsent: (key) => nameableWhenAbsent(policy, key) },
  );
  let scanned = 0;
  let calls = 0;
  const handOver = (batches: Batch[]) => {
    calls += batches.length;
    if (batches.length > 0) options.onBatches?.(batches);
  };
  for await (const resource of discover(cloud, policy, region, options.retry)) {
    scanned += 1;
    if (scanned % 1000 === 0) options.onScanned?.(scanned);
    const removal = matchResource(policy, resource, options.now);
    options.onResource?.(resource, removal);
    if (removal) {
      planner.add(removal);
      options.onRemoval?.(removal);
      if (options.onBatches) handOver(planner.drain());
    }
  }
  options.onScanned?.(scanned);
  let batches = planner.finish();
  if (options.onBatches) {
    handOver(batches);
    batches = [];
  } else calls = batches.length;
  return { scanned, violating: planner.resourceCount, tagsPlanned: planner.tagCount, batches, calls, floor: planner.floor };
}

