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

/** The calls exact-set grouping makes: resources grouped by their exact key set, each group cut into 20 x 20. */
export function exactGroupingCalls(removals: Iterable<Removal>): number {
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

/** What a (policy, region)'s removals need at the very least, whatever the packing. */
export interface CallFloor {
  /** `ceil(violating / 20)`: every violating resource is named by at least one call of at most 20 IDs. */
  readonly simple: number;
  /**
   * A tighter lower bound: all=true resources never share a call with key removals, so `ceil(all / 20)`, plus
   * for key removals the larger of `ceil(sum of ceil(keys / 20) / 20)` (a resource losing more than 20 keys
   * is named by several calls) and `ceil(pairs / 400)` (a call removes at most 20 x 20 pairs).
   * Equals `simple` when no resource loses more than 20 keys and the all=true and key resources fill their calls.
   */
  readonly bound: number;
}

/** Running totals from which the floor is computed; kept by the planner without holding the removals. */
export interface FloorTally {
  all: number;
  keyed: number;
  /** Sum over key removals of ceil(keys / 20). */
  keyedSlots: number;
  /** Sum over key removals of their key count. */
  pairs: number;
}

export function emptyTally(): FloorTally {
  return { all: 0, keyed: 0, keyedSlots: 0, pairs: 0 };
}

export function tallyRemoval(tally: FloorTally, removal: Removal): void {
  if (removal.all) {
    tally.all += 1;
    return;
  }
  const keys = new Set(removal.keys).size;
  tally.keyed += 1;
  tally.keyedSlots += Math.ceil(keys / MAX_KEYS_PER_CALL);
  tally.pairs += keys;
}

export function floorOf(tally: FloorTally): CallFloor {
  const simple = Math.ceil((tally.all + tally.keyed) / MAX_IDS_PER_CALL);
  const keyed = Math.max(Math.ceil(tally.keyedSlots / MAX_IDS_PER_CALL), Math.ceil(tally.pairs / (MAX_IDS_PER_CALL * MAX_KEYS_PER_CALL)));
  return { simple, bound: Math.ceil(tally.all / MAX_IDS_PER_CALL) + keyed };
}

/** The floor of a set of removals of one (policy, region). */
export function callFloor(removals: Iterable<Removal>): CallFloor {
  const tally = emptyTally();
  for (const removal of removals) tallyRemoval(tally, removal);
  return floorOf(tally);
}

/** How key removals are grouped into calls. */
export type Packing = 'union' | 'exact';

export interface PlannerOptions {
  /**
   * `union` (default): resources with different keys share a call when every key it names is one the policy
   * removes from each of them were it there (see `nameableWhenAbsent`), so the calls approach `ceil(violating / 20)`.
   * `exact`: resources grouped by their exact key set (version 0.1): every resource carries every key named.
   */
  packing?: Packing;
  /**
   * Whether the policy would remove `key` from a resource it selected that lacks it, whatever its value.
   * Keys it refuses are named only with resources that lose them. Without it, union packing names no key
   * a resource lacks (which makes it exact-set grouping with the leftovers packed).
   */
  nameableWhenAbsent?: (key: string) => boolean;
}

export interface BatchPlanner {
  /**
   * Adds one resource's removal; full batches are emitted as soon as they hold 20 IDs. A removal of a resource
   * still in an open batch with the same keys (a listing that repeated a row) is ignored: no batch ever names
   * an ID twice. Returns whether the removal was planned.
   */
  add(removal: Removal): boolean;
  /** Emits the remaining partial batches and returns every batch not yet drained, in a deterministic order. */
  finish(): Batch[];
  /**
   * Takes the batches emitted since the last call (full ones while adding; the rest after `finish`), so a
   * caller can enqueue or count them as discovery pages and the planner stops holding them.
   */
  drain(): Batch[];
  /** Tags the planned batches remove (all=true counts the carried keys). */
  readonly tagCount: number;
  readonly resourceCount: number;
  /** The floor of the removals added so far. */
  readonly floor: CallFloor;
}

/** How many partial batches union packing keeps open per group of equal unnameable keys. */
const OPEN_BINS = 24;

interface Bin {
  keys: Set<string>;
  members: Map<string, string[]>;
}

/**
 * Plans batches of at most 20 IDs and 20 keys, `all` batches apart (20 IDs each, with the carried keys).
 * Union packing: removals are grouped by their keys the policy cannot name for a resource lacking them (the
 * group's every call names those keys, and only resources losing them); within a group, resources go into the
 * open batch whose key set grows least within 20 keys (best fit), a resource losing more than 20 keys in
 * several. Each key batch records, per resource, the keys it carried (`carried`), so counts stay exact.
 * Exact packing: groups of equal key sets, cut into 20 x 20 (the count equals `exactGroupingCalls`).
 * Memory holds only the planned batches and a few open batches per group, never the scanned estate.
 */
export function createBatchPlanner(ctx: BatchContext, options: PlannerOptions = {}): BatchPlanner {
  const packing = options.packing ?? 'union';
  const nameable = new Map<string, boolean>();
  const canName = (key: string): boolean => {
    let ok = nameable.get(key);
    if (ok === undefined) {
      ok = options.nameableWhenAbsent?.(key) ?? false;
      nameable.set(key, ok);
    }
    return ok;
  };
  const exactGroups = new Map<string, { keys: string[]; all: boolean; removals: Removal[] }>();
  const unionGroups = new Map<string, { fixed: string[]; bins: Bin[] }>();
  let allGroup: Removal[] = [];
  let batches: Batch[] = [];
  let tagCount = 0;
  let resourceCount = 0;
  const tally = emptyTally();

  function emitAll(removals: readonly Removal[]): void {
    const ids = removals.map((r) => r.resourceId);
    const carried: Record<string, readonly string[]> = {};
    for (const r of removals) carried[r.resourceId] = [...new Set(r.keys)].sort();
    batches.push({ id: batchId(ctx, ids, [], true), ...ctx, resourceIds: ids, tagKeys: [], all: true, carried });
  }

  function emitExact(group: { keys: string[]; all: boolean; removals: Removal[] }): void {
    if (group.all) emitAll(group.removals);
    else {
      const ids = group.removals.map((r) => r.resourceId);
      for (const call of splitIntoCalls(ids, group.keys, false)) {
        batches.push({ id: batchId(ctx, call.resourceIds, call.tagKeys, false), ...ctx, ...call, all: false });
      }
    }
    group.removals = [];
  }

  function emitBin(bin: Bin): void {
    const ids = [...bin.members.keys()];
    const tagKeys = [...bin.keys].sort();
    const carried: Record<string, readonly string[]> = {};
    for (const [id, keys] of bin.members) carried[id] = keys;
    batches.push({ id: batchId(ctx, ids, tagKeys, false), ...ctx, resourceIds: ids, tagKeys, all: false, carried });
  }

  /** Whether an open bin of the group already holds this resource with exactly these keys (a repeated row). */
  function holds(group: { bins: Bin[] } | undefined, id: string, keys: readonly string[]): boolean {
    for (const bin of group?.bins ?? []) {
      const held = bin.members.get(id);
      if (held !== undefined && held.length === keys.length && held.every((k, i) => k === keys[i])) return true;
    }
    return false;
  }

  /** Places one resource's keys (at most 20, sorted, the group's fixed keys among them) into a group's bins. */
  function place(group: { fixed: string[]; bins: Bin[] }, id: string, keys: string[]): void {
    let best: Bin | undefined;
    let bestGrowth = Number.POSITIVE_INFINITY;
    for (const bin of group.bins) {
      if (bin.members.has(id)) continue;
      let growth = 0;
      for (const k of keys) if (!bin.keys.has(k)) growth += 1;
      if (bin.keys.size + growth <= MAX_KEYS_PER_CALL && growth < bestGrowth) {
        best = bin;
        bestGrowth = growth;
        if (growth === 0) break;
      }
    }
    if (!best) {
      if (group.bins.length >= OPEN_BINS) {
        // Close the open batch with the fewest free key slots (the least likely to take more), most IDs first.
        let fullest = 0;
        for (let i = 1; i < group.bins.length; i++) {
          const a = group.bins[i]!;
          const b = group.bins[fullest]!;
          if (a.keys.size > b.keys.size || (a.keys.size === b.keys.size && a.members.size > b.members.size)) fullest = i;
        }
        emitBin(group.bins[fullest]!);
        group.bins.splice(fullest, 1);
      }
      best = { keys: new Set(group.fixed), members: new Map() };
      group.bins.push(best);
    }
    for (const k of keys) best.keys.add(k);
    best.members.set(id, keys);
    if (best.members.size === MAX_IDS_PER_CALL) {
      emitBin(best);
      group.bins.splice(group.bins.indexOf(best), 1);
    }
  }

  function addUnion(removal: Removal): boolean {
    if (removal.all) {
      if (allGroup.some((r) => r.resourceId === removal.resourceId)) return false;
      allGroup.push(removal);
      if (allGroup.length === MAX_IDS_PER_CALL) {
        emitAll(allGroup);
        allGroup = [];
      }
      return true;
    }
    const keys = [...new Set(removal.keys)].sort();
    const fixed = keys.filter((k) => !canName(k));
    const free = keys.filter((k) => canName(k));
    // A resource losing more than 20 keys is split: its unnameable keys first, each part packed on its own.
    const ordered = [...fixed, ...free];
    const parts: string[][] = [];
    for (let i = 0; i < ordered.length; i += MAX_KEYS_PER_CALL) parts.push(ordered.slice(i, i + MAX_KEYS_PER_CALL));
    const signatureOf = (part: readonly string[]): string => part.filter((k) => !canName(k)).join('\u0000');
    // A repeat of a resource whose first copy is still open: every part is held as it is.
    if (parts.length > 0 && parts.every((part) => holds(unionGroups.get(signatureOf(part)), removal.resourceId, [...part].sort()))) return false;
    for (const part of parts) {
      const partFixed = part.filter((k) => !canName(k));
      const signature = signatureOf(part);
      let group = unionGroups.get(signature);
      if (!group) {
        group = { fixed: partFixed, bins: [] };
        unionGroups.set(signature, group);
      }
      place(group, removal.resourceId, [...part].sort());
    }
    return true;
  }

  function addExact(removal: Removal): boolean {
    const signature = groupSignature(removal);
    let group = exactGroups.get(signature);
    if (!group) {
      group = { keys: removal.all ? [] : [...new Set(removal.keys)].sort(), all: removal.all, removals: [] };
      exactGroups.set(signature, group);
    }
    if (group.removals.some((r) => r.resourceId === removal.resourceId)) return false;
    group.removals.push(removal);
    if (group.removals.length === MAX_IDS_PER_CALL) emitExact(group);
    return true;
  }

  return {
    add(removal) {
      if (!(packing === 'exact' ? addExact(removal) : addUnion(removal))) return false;
      resourceCount += 1;
      tagCount += new Set(removal.keys).size;
      tallyRemoval(tally, removal);
      return true;
    },
    finish() {
      if (packing === 'exact') {
        for (const group of exactGroups.values()) if (group.removals.length > 0) emitExact(group);
      } else {
        for (const group of unionGroups.values()) {
          for (const bin of group.bins) emitBin(bin);
          group.bins = [];
        }
        if (allGroup.length > 0) emitAll(allGroup);
        allGroup = [];
      }
      return batches;
    },
    drain() {
      const out = batches;
      batches = [];
      return out;
    },
    get tagCount() {
      return tagCount;
    },
    get resourceCount() {
      return resourceCount;
    },
    get floor() {
      return floorOf(tally);
    },
  };
}

export { createRecentIds, REPEAT_WINDOW, type RecentIds } from './recent-ids.js';
