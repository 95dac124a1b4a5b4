// Owns the pure step from removals to minimal UnTagResources batches and their identities.
// Must not do I/O, read the clock or draw random numbers: run IDs and removals come in as arguments.
import { createHash } from 'node:crypto';
import { MAX_IDS_PER_CALL, MAX_KEYS_PER_CALL, type Batch, type Removal } from '../model.js';

export interface BatchContext {
  readonly policy: string;
  readonly region: string;
  readonly runId: string;
}

/**
 * The batch identity: a hash of (policy, region, sorted IDs, sorted keys or all, run). Used as the BullMQ
 * jobId (no `:`, never all digits) and as the ClientToken (ASCII, at most 64 characters), so every retry of
 * a batch sends the same token and the next scan makes new ones.
 */
export function batchId(ctx: BatchContext, resourceIds: readonly string[], tagKeys: readonly string[], all: boolean): string {
  const canonical = JSON.stringify([
    ctx.policy,
    ctx.region,
    ctx.runId,
    [...resourceIds].sort(),
    all ? '*all*' : [...tagKeys].sort(),
  ]);
  return `tw-${createHash('sha256').update(canonical).digest('hex').slice(0, 40)}`;
}

/** A derived token for a follow-up call made on behalf of a batch (e.g. after some IDs were deleted). */
export function derivedToken(parentId: string, resourceIds: readonly string[]): string {
  const digest = createHash('sha256').update(JSON.stringify([parentId, [...resourceIds].sort()])).digest('hex');
  return `tw-${digest.slice(0, 40)}`;
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Cuts one request of any size into valid calls: at most 20 IDs x 20 keys each (the cross product of ID and
 * key chunks), or 20 IDs with all=true. Keys are sorted and de-duplicated; IDs de-duplicated in order.
 */
export function splitIntoCalls(
  resourceIds: readonly string[],
  tagKeys: readonly string[],
  all: boolean,
): Array<{ resourceIds: string[]; tagKeys: string[] }> {
  const ids = [...new Set(resourceIds)];
  const keyChunks = all ? [[]] : chunk([...new Set(tagKeys)].sort(), MAX_KEYS_PER_CALL);
  const calls: Array<{ resourceIds: string[]; tagKeys: string[] }> = [];
  for (const idChunk of chunk(ids, MAX_IDS_PER_CALL)) {
    for (const keyChunk of keyChunks) calls.push({ resourceIds: idChunk, tagKeys: keyChunk });
  }
  return calls;
}

/** The fewest calls that can remove these removals when resources are grouped by their exact key set. */
export function lowerBound(removals: Iterable<Removal>): number {
  const groups = new Map<string, { ids: number; keys: number }>();
  for (const removal of removals) {
    const signature = groupSignature(removal);
    const group = groups.get(signature) ?? { ids: 0, keys: removal.all ? 1 : new Set(removal.keys).size };
    group.ids += 1;
    groups.set(signature, group);
  }
  let calls = 0;
  for (const { ids, keys } of groups.values()) {
    calls += Math.ceil(ids / MAX_IDS_PER_CALL) * Math.ceil(keys / MAX_KEYS_PER_CALL);
  }
  return calls;
}

function groupSignature(removal: Removal): string {
  return removal.all ? '\u0000all' : [...new Set(removal.keys)].sort().join('\u0000');
}

export interface BatchPlanner {
  /** Adds one resource's removal; full batches are emitted as soon as a group holds 20 IDs. */
  add(removal: Removal): void;
  /** Emits the remaining partial groups and returns every batch planned, in a deterministic order. */
  finish(): Batch[];
  /** Tags the planned batches remove (all=true counts the carried keys). */
  readonly tagCount: number;
  readonly resourceCount: number;
}

/**
 * Plans minimal batches: resources grouped by the exact set of keys to remove, each group cut into calls of
 * at most 20 IDs and 20 keys, `all` apart. The call count equals `lowerBound` of the same removals.
 * Memory holds only the planned batches and one partial group per key set, never the scanned estate.
 */
export function createBatchPlanner(ctx: BatchContext): BatchPlanner {
  const groups = new Map<string, { keys: string[]; all: boolean; removals: Removal[] }>();
  const batches: Batch[] = [];
  let tagCount = 0;
  let resourceCount = 0;

  function emit(group: { keys: string[]; all: boolean; removals: Removal[] }): void {
    const ids = group.removals.map((r) => r.resourceId);
    if (group.all) {
      const carried: Record<string, readonly string[]> = {};
      for (const r of group.removals) carried[r.resourceId] = [...r.keys].sort();
      batches.push({ id: batchId(ctx, ids, [], true), ...ctx, resourceIds: ids, tagKeys: [], all: true, carried });
    } else {
      for (const call of splitIntoCalls(ids, group.keys, false)) {
        batches.push({ id: batchId(ctx, call.resourceIds, call.tagKeys, false), ...ctx, ...call, all: false });
      }
    }
    group.removals = [];
  }

  return {
    add(removal) {
      const signature = groupSignature(removal);
      let group = groups.get(signature);
      if (!group) {
        group = { keys: removal.all ? [] : [...new Set(removal.keys)].sort(), all: removal.all, removals: [] };
        groups.set(signature, group);
      }
      group.removals.push(removal);
      resourceCount += 1;
      tagCount += new Set(removal.keys).size;
      if (group.removals.length === MAX_IDS_PER_CALL) emit(group);
    },
    finish() {
      for (const group of groups.values()) if (group.removals.length > 0) emit(group);
      return batches;
    },
    get tagCount() {
      return tagCount;
    },
    get resourceCount() {
      return resourceCount;
    },
  };
}
