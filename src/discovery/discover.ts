// Paged reads of the estate: one policy in one region, streamed resource by resource within the List quotas
// (the cloud client's hooks pace every page), resuming a failed page from its token.
import type { CloudApi, CloudFailure, Page } from '../cloud/types.js';
import type { Resource } from '../model.js';
import { discoveryPlan, type CompiledPolicy } from '../policy/index.js';

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
export async function* resumable<T>(open: (startToken?: string) => AsyncIterable<Page<T>>, retry: PageRetry): AsyncIterable<Page<T>> {
  let token: string | undefined;
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

/**
 * Streams candidate resources for a policy in one region, never holding the estate: ListVpcPeerConnections
 * pages, or (for exact keys selected by tags only) ListTagResources per key, merged per resource.
 */
export async function* discover(cloud: CloudApi, policy: CompiledPolicy, region: string, retry: PageRetry): AsyncIterable<Resource> {
  const plan = discoveryPlan(policy);
  if (plan.kind === 'connections') {
    const { instanceIds, vpcIds, name, resourceGroupId, tags } = plan.filter;
    const base = {
      ...(vpcIds ? { vpcIds } : {}),
      ...(name !== undefined ? { name } : {}),
      ...(resourceGroupId !== undefined ? { resourceGroupId } : {}),
      ...(tags ? { tags } : {}),
    };
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

