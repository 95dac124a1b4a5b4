// Paged reads of the estate: one policy in one region, streamed resource by resource within the List quotas
// (the cloud client's hooks pace every page), resuming a failed page from its token.
import type { CloudApi, CloudFailure, Page } from '../cloud/types.js';
import type { Resource } from '../model.js';
import { discoveryPlan, type CompiledPolicy } from '../policy/index.js';

type ConnectionsFilter = Extract<ReturnType<typeof discoveryPlan>, { kind: 'connections' }>['filter'];

/** How a listing resumes after a transient or throttled page: from that page's token, after a pause. */
export interface PageRetry {
  classify(err: unknown): CloudFailure;
  /** Consecutive failed pages before the scan gives up (and the job's own retry takes over). */
  maxFailures: number;
  backoff(failures: number): number;
  /** Told before each pause: which retry of how many, how long, and why (the CLI shows it on stderr). */
  onRetry?: (retry: { failures: number; maxFailures: number; delayMs: number; error: unknown }) => void;
}

/**
 * Pages a listing, resuming from the last good page's token when a page fails transiently, so one 503 in a
 * million-connection scan does not start it over.
 */
export async function* resumable<T>(open: (startToken?: string) => AsyncIterable<Page<T>>, retry: PageRetry, startToken?: string): AsyncIterable<Page<T>> {
  let token: string | undefined = startToken;
  let failures = 0;
  for (;;) {
    try {
      for await (const page of open(token)) {
        failures = 0;
        yield page;
        token = page.nextToken;
      }
      return;
    } catch (err) {
      const kind = retry.classify(err).kind;
      failures += 1;
      if ((kind !== 'transient' && kind !== 'throttled') || failures > retry.maxFailures) throw err;
      const delayMs = retry.backoff(failures);
      retry.onRetry?.({ failures, maxFailures: retry.maxFailures, delayMs, error: err });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/** Where a paged discovery stands: which listing, the token after the last page read, and how many it has read. */
export interface DiscoveryCursor {
  /** Index of the listing (one per instance ID of the selector, else a single one). */
  readonly listing: number;
  /** The token of the next page of that listing; undefined: its first page. */
  readonly token?: string;
  /** Resources read so far from that listing (for the bound on what is left). */
  readonly read: number;
}

/** One page of discovery: its resources, where to resume after it, and a bound on what is still to come. */
export interface DiscoveryPage {
  readonly items: readonly Resource[];
  /** Where to resume after this page; null once discovery is complete. */
  readonly cursor: DiscoveryCursor | null;
  /**
   * At most this many resources are still to come, from the listing's TotalCount (a resource created during the
   * scan may add to it); undefined when nothing bounds it.
   */
  readonly left?: number;
}

/** The ListVpcPeerConnections filter a policy's selector gives, without the instance ID (one listing each). */
function listFilterOf(filter: ConnectionsFilter) {
  const { vpcIds, name, resourceGroupId, tags } = filter;
  return {
    ...(vpcIds ? { vpcIds } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(resourceGroupId !== undefined ? { resourceGroupId } : {}),
    ...(tags ? { tags } : {}),
  };
}

/**
 * Streams discovery page by page, from `from` (a cursor of an earlier page) or from the start. Each page says
 * where to resume after it, so a scan that dies mid-way continues from its last recorded page.
 * ListTagResources discovery merges rows per resource across pages and keys, so it comes as one page at the end.
 */
export async function* discoverPages(
  cloud: CloudApi,
  policy: CompiledPolicy,
  region: string,
  retry: PageRetry,
  from?: DiscoveryCursor,
  pageSize?: number,
): AsyncIterable<DiscoveryPage> {
  const plan = discoveryPlan(policy);
  if (plan.kind === 'connections') {
    const { instanceIds } = plan.filter;
    const base = listFilterOf(plan.filter);
    const listings = instanceIds ?? [undefined];
    for (let l = from?.listing ?? 0; l < listings.length; l += 1) {
      const instanceId = listings[l];
      const sized = pageSize !== undefined ? { ...base, maxResults: pageSize } : base;
      const filter = instanceId === undefined ? sized : { ...sized, instanceId };
      const resumed = from !== undefined && from.listing === l;
      let read = resumed ? from.read : 0;
      const start = resumed ? from.token : undefined;
      for await (const page of resumable((token) => cloud.listPeerConnections(region, filter, token), retry, start)) {
        read += page.items.length;
        // A listing by instance ID lists at most that one connection.
        const left = page.totalCount === undefined ? undefined : Math.max(0, page.totalCount - read) + (listings.length - l - 1);
        const cursor = page.nextToken !== undefined ? { listing: l, token: page.nextToken, read } : l + 1 < listings.length ? { listing: l + 1, read: 0 } : null;
        yield { items: page.items, cursor, ...(left !== undefined ? { left } : {}) };
      }
    }
    return;
  }
  const items: Resource[] = [];
  for await (const resource of discover(cloud, policy, region, retry)) items.push(resource);
  yield { items, cursor: null, left: 0 };
}

/**
 * Streams candidate resources for a policy in one region, never holding the estate: ListVpcPeerConnections
 * pages, or (for exact keys selected by tags only) ListTagResources per key, merged per resource.
 */
export async function* discover(cloud: CloudApi, policy: CompiledPolicy, region: string, retry: PageRetry): AsyncIterable<Resource> {
  const plan = discoveryPlan(policy);
  if (plan.kind === 'connections') {
    const { instanceIds } = plan.filter;
    const base = listFilterOf(plan.filter);
    for (const instanceId of instanceIds ?? [undefined]) {
      const filter = instanceId === undefined ? base : { ...base, instanceId };
      for await (const page of resumable((token) => cloud.listPeerConnections(region, filter, token), retry)) yield* page.items;
    }
    return;
  }
  // Rows come one per (resource, tag); a resource's rows may span pages and keys, so merge before matching.
  // Only resources carrying a targeted key are held, not the estate.
  const found = new Map<string, Record<string, string>>();
  for (const key of plan.tagKeys) {
    const tagKeys = [key, ...plan.tags.map((t) => t.key).filter((k) => k !== key)];
    for await (const page of resumable((token) => cloud.listTagResources(region, { tagKeys }, token), retry)) {
      for (const row of page.items) {
        const tags = found.get(row.resourceId) ?? {};
        tags[row.tagKey] = row.tagValue;
        found.set(row.resourceId, tags);
      }
    }
  }
  for (const [id, tags] of found) yield { id, region, tags, attributes: {} };
}

