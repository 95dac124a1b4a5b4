// Chooses how a policy's candidates are found: ListTagResources by key, or paging ListVpcPeerConnections.
import { compilePattern } from './patterns.js';
import type { CompiledPolicy, DiscoveryPlan, TagFilter } from './types.js';
import { matchersOf } from './compiled.js';

/** ListVpcPeerConnections accepts at most 10 Tags.N filters (metadata maxItems). */
const MAX_CONNECTION_TAG_FILTERS = 10;
/** ListTagResources accepts at most 20 Tag.N filters; one is the key being removed. */
const MAX_EXTRA_TAG_FILTERS = 19;

function tagFilters(tags: Record<string, string> | undefined): TagFilter[] {
  return Object.entries(tags ?? {}).map(([key, value]) => {
    const p = compilePattern(value);
    // An empty value is ambiguous in the API (any value or empty value?), so it filters on the key only.
    return !('error' in p) && p.exact && value !== '' ? { key, value } : { key };
  });
}

/**
 * The discovery plan of a policy. `tag-keys` (ListTagResources, 3000 calls/min per region) when
 * the policy removes only exact keys, selects on nothing but tags and has no tag-based exemption,
 * because then the rows ListTagResources returns carry every tag matching needs. Otherwise
 * `connections` (ListVpcPeerConnections, 360 calls/min, 100 per page) with the selector's
 * server-side filters: instance IDs, a single VPC ID (two IDs would mean "between these two"),
 * an exact single name, a single resource group, and tag filters (exact values; patterns as key only).
 */
export function discoveryPlan(policy: CompiledPolicy): DiscoveryPlan {
  const { spec } = policy.document;
  const { selector: sel, remove } = spec;
  const tags = tagFilters(sel?.tags);
  const exactOnly = !remove.all && (remove.keyPatterns ?? []).length === 0 && (remove.keys ?? []).length > 0;
  const tagsOnly = sel?.resourceIds === undefined && sel?.attributes === undefined;
  const exemptByTags = spec.exemptions.some((e) => e.tags !== undefined);
  if (exactOnly && tagsOnly && !exemptByTags && tags.length <= MAX_EXTRA_TAG_FILTERS) {
    const m = matchersOf(policy);
    const keep = (k: string) => m.keepExact.has(k) || m.keepPatterns.some((p) => p.test(k));
    const tagKeys = [...new Set(remove.keys)].filter((k) => !keep(k)).sort();
    return { kind: 'tag-keys', tagKeys, tags };
  }
  const attrs = sel?.attributes;
  const onlyName = attrs?.names?.length === 1 ? attrs.names[0] : undefined;
  const namePattern = onlyName === undefined ? undefined : compilePattern(onlyName);
  const exactName = namePattern !== undefined && !('error' in namePattern) && namePattern.exact;
  return {
    kind: 'connections',
    filter: {
      ...(sel?.resourceIds ? { instanceIds: [...new Set(sel.resourceIds)].sort() } : {}),
      ...(attrs?.vpcIds?.length === 1 ? { vpcIds: [...attrs.vpcIds] } : {}),
      ...(exactName && onlyName !== undefined ? { name: onlyName } : {}),
      ...(attrs?.resourceGroupIds?.length === 1 && attrs.resourceGroupIds[0] !== undefined ? { resourceGroupId: attrs.resourceGroupIds[0] } : {}),
      ...(tags.length > 0 ? { tags: tags.slice(0, MAX_CONNECTION_TAG_FILTERS) } : {}),
    },
  };
}
