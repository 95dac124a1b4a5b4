// Pure matching: (policy, resource, now) -> the tag keys to remove from that resource, or all of them.
import type { Removal, Resource } from '../model.js';
import { matchersOf } from './compiled.js';
import type { Matchers } from './compiled.js';
import { isSystemTagKey } from './tag-keys.js';
import type { CompiledPolicy } from './types.js';

function tagsMatch(conditions: Matchers['selector']['tags'], tags: Resource['tags']): boolean {
  return conditions.every(([key, pattern]) => {
    const value = Object.hasOwn(tags, key) ? tags[key] : undefined;
    return value !== undefined && pattern.test(value);
  });
}

function selected(m: Matchers, r: Resource): boolean {
  const s = m.selector;
  const a = r.attributes;
  if (s.resourceIds && !s.resourceIds.has(r.id)) return false;
  if (!tagsMatch(s.tags, r.tags)) return false;
  if (s.vpcIds && !((a.vpcId !== undefined && s.vpcIds.has(a.vpcId)) || (a.acceptingVpcId !== undefined && s.vpcIds.has(a.acceptingVpcId)))) return false;
  if (s.names && (a.name === undefined || !s.names.some((p) => p.test(a.name ?? '')))) return false;
  if (s.statuses && (a.status === undefined || !s.statuses.has(a.status))) return false;
  if (s.resourceGroupIds && (a.resourceGroupId === undefined || !s.resourceGroupIds.has(a.resourceGroupId))) return false;
  return true;
}

function exempt(m: Matchers, r: Resource, nowMs: number): boolean {
  return m.exemptions.some(
    (e) => nowMs < e.endMs && (!e.resourceIds || e.resourceIds.has(r.id)) && (!e.tags || tagsMatch(e.tags, r.tags)),
  );
}

function kept(m: Matchers, key: string): boolean {
  return isSystemTagKey(key) || m.keepExact.has(key) || m.keepPatterns.some((p) => p.test(key));
}

/**
 * What `policy` removes from `resource` at `now`, or null for nothing. Rules, in order:
 * the resource's region must be one of the policy's; the selector must match; an exemption
 * whose `until` is still ahead of `now` leaves the resource alone; system tags (`acs:`, `aliyun`)
 * and keys matched by `keep` are never removed; otherwise each carried key selected by
 * `remove.keys`/`remove.keyPatterns` is removed, except a key listed in `remove.where` whose
 * value does not match its pattern. With `remove.all`, the result is `all: true` (listing every
 * carried key) only when no carried key is kept or system; otherwise it falls back to the explicit
 * list of the other keys. Result keys are sorted and always a subset of the carried keys.
 */
export function matchResource(policy: CompiledPolicy, resource: Resource, now: Date): Removal | null {
  const m = matchersOf(policy);
  if (!m.regions.has(resource.region)) return null;
  if (!selected(m, resource)) return null;
  if (exempt(m, resource, now.getTime())) return null;
  const carried = Object.keys(resource.tags).sort();
  if (m.all) {
    const removable = carried.filter((k) => !kept(m, k));
    if (removable.length === 0) return null;
    if (removable.length === carried.length) return { resourceId: resource.id, all: true, keys: carried };
    return { resourceId: resource.id, all: false, keys: removable };
  }
  const keys = carried.filter((key) => {
    if (kept(m, key)) return false;
    if (!m.removeKeys.has(key) && !m.removePatterns.some((p) => p.test(key))) return false;
    const condition = m.where.get(key);
    return condition === undefined || condition.test(resource.tags[key] ?? '');
  });
  return keys.length === 0 ? null : { resourceId: resource.id, all: false, keys };
}

/**
 * Whether a call of `policy` may name `key` for a selected, non-exempt resource that does not carry it: true
 * only when the policy would remove the key from every such resource were it there, whatever its value. So
 * never a system or kept key, never a key outside `remove`, never a key with a `remove.where` value condition,
 * and never a key that a selector or exemption tests (gaining it could deselect or exempt the resource).
 * A key a resource carries but keeps is never nameable either, so naming it for a resource without it is
 * the only case this answers. Used by the planner to pack resources with different keys into one call.
 */
export function nameableWhenAbsent(policy: CompiledPolicy, key: string): boolean {
  const m = matchersOf(policy);
  if (kept(m, key)) return false;
  if (!m.all && !m.removeKeys.has(key) && !m.removePatterns.some((p) => p.test(key))) return false;
  if (m.where.has(key)) return false;
  if (m.selector.tags.some(([k]) => k === key)) return false;
  return !m.exemptions.some((e) => e.tags?.some(([k]) => k === key));
}

/**
 * Whether `policy` removes `key` from some resource it selects, for some value: the key is neither system nor
 * kept, and `remove` names it (keys, patterns or all). A saved plan's batch may name only such keys.
 */
export function removesKey(policy: CompiledPolicy, key: string): boolean {
  const m = matchersOf(policy);
  if (kept(m, key)) return false;
  return m.all || m.removeKeys.has(key) || m.removePatterns.some((p) => p.test(key));
}

/** Whether `policy` removes every tag (`remove.all`): the only policy whose batches may be UnTagResources All=true. */
export function removesAll(policy: CompiledPolicy): boolean {
  return matchersOf(policy).all;
}
