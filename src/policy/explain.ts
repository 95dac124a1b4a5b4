// Pure: why a policy removes what it removes from one resource, for `tagwarden plan --verbose`.
import type { Removal, Resource } from '../model.js';
import { matchersOf } from './compiled.js';
import { matchResource } from './match.js';
import { isSystemTagKey } from './tag-keys.js';
import type { CompiledPolicy } from './types.js';

/** What a policy does to one resource it selects. */
export interface ResourceExplanation {
  /** What is removed (as matchResource says), or null. */
  removal: Removal | null;
  /** Carried keys the policy targets but keeps: `keep` rules and system tags. */
  kept: string[];
  /** When an exemption in force covers the resource: the keys it would otherwise lose, and until when. */
  exempt?: { keys: string[]; untilMs: number };
}

/** Explains `policy` on `resource` at `now`; null when the policy does not select the resource. */
export function explainResource(policy: CompiledPolicy, resource: Resource, now: Date): ResourceExplanation | null {
  const m = matchersOf(policy);
  if (!m.regions.has(resource.region)) return null;
  const removal = matchResource(policy, resource, now);
  const carried = Object.keys(resource.tags).sort();
  const targeted = (key: string) => m.all || m.removeKeys.has(key) || m.removePatterns.some((p) => p.test(key));
  const isKept = (key: string) => isSystemTagKey(key) || m.keepExact.has(key) || m.keepPatterns.some((p) => p.test(key));
  const kept = carried.filter((k) => targeted(k) && isKept(k));
  if (removal) return { removal, kept };
  // Not removed: either not selected, nothing to remove, or exempt. Only an exemption in force says which.
  const nowMs = now.getTime();
  const tagsMatch = (conditions: ReadonlyArray<readonly [string, { test(v: string): boolean }]>) =>
    conditions.every(([key, pattern]) => Object.hasOwn(resource.tags, key) && pattern.test(resource.tags[key] ?? ''));
  const exemption = m.exemptions.find((e) => nowMs < e.endMs && (!e.resourceIds || e.resourceIds.has(resource.id)) && (!e.tags || tagsMatch(e.tags)));
  if (!exemption) return null;
  // What would go once this exemption ends (null: not selected, or nothing to remove anyway).
  const without = matchResource(policy, resource, new Date(exemption.endMs));
  if (!without) return null;
  return { removal: null, kept, exempt: { keys: [...without.keys], untilMs: exemption.endMs } };
}
