// What the emulator's state must be after policies ran: the demo's and the end-to-end tests' oracle.
import type { Resource } from '../model.js';
import { matchResource, type CompiledPolicy } from '../policy/index.js';
import type { EmulatorResource } from './types.js';

/** The emulator's view of a connection as the policy engine sees it. */
export function toResource(r: EmulatorResource): Resource {
  const attributes: Record<string, string> = {};
  for (const key of ['name', 'status', 'vpcId', 'acceptingVpcId', 'acceptingRegionId', 'resourceGroupId', 'description'] as const) {
    const value = r[key];
    if (typeof value === 'string' && value !== '') attributes[key] = value;
  }
  return { id: r.id, region: r.region, tags: r.tags, attributes };
}

/** Per resource, the keys the enforcing policies remove from the state before a run. */
export function expectedRemovals(before: readonly EmulatorResource[], policies: readonly CompiledPolicy[], now: Date): Map<string, Set<string>> {
  const removals = new Map<string, Set<string>>();
  for (const r of before) {
    const resource = toResource(r);
    for (const policy of policies) {
      if (policy.mode !== 'enforce' || !policy.regions.includes(r.region)) continue;
      const removal = matchResource(policy, resource, now);
      if (!removal) continue;
      const keys = removals.get(r.id) ?? new Set<string>();
      for (const k of removal.keys) keys.add(k);
      removals.set(r.id, keys);
    }
  }
  return removals;
}

export interface StateCheck {
  /** Tags that had to go and did. */
  removed: number;
  /** Tags that had to stay and did. */
  untouched: number;
  /** Tags that had to go and are still there: `id key`. */
  notRemoved: string[];
  /** Tags that had to stay and are gone (or changed): `id key`. */
  wronglyRemoved: string[];
  ok: boolean;
}

/** Compares the state after a run with what the removals allow: exactly the targeted tags gone, nothing else. */
export function checkState(
  before: readonly EmulatorResource[],
  after: readonly EmulatorResource[],
  removals: ReadonlyMap<string, ReadonlySet<string>>,
): StateCheck {
  const afterById = new Map(after.map((r) => [r.id, r.tags]));
  const check: StateCheck = { removed: 0, untouched: 0, notRemoved: [], wronglyRemoved: [], ok: true };
  for (const r of before) {
    const now = afterById.get(r.id) ?? {};
    const targeted = removals.get(r.id) ?? new Set<string>();
    for (const [key, value] of Object.entries(r.tags)) {
      if (targeted.has(key)) {
        if (key in now) check.notRemoved.push(`${r.id} ${key}`);
        else check.removed += 1;
      } else if (now[key] === value) check.untouched += 1;
      else check.wronglyRemoved.push(`${r.id} ${key}`);
    }
  }
  check.ok = check.notRemoved.length === 0 && check.wronglyRemoved.length === 0;
  return check;
}
