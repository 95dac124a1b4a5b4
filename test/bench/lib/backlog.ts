// Estates and backlogs of untag batches for the queue benchmarks: resources that each carry K keys (20 by
// default), and batches that each remove one key from 20 of them, so every batch is one real UnTagResources call.
import type { Queue } from 'bullmq';
import { batchId } from '../../../src/planner/index.js';
import { untagJobOptions, type Producer, type UntagJob } from '../../../src/queue/index.js';
import type { EmulatorAdmin, EmulatorResource } from '../../../src/emulator/index.js';
import { benchId } from './context.js';

export const KEYS_PER_RESOURCE = 20;
export const IDS_PER_BATCH = 20;

/** The keys every backlog resource carries. */
export const BACKLOG_KEYS = Array.from({ length: KEYS_PER_RESOURCE }, (_, k) => `bq-${String(k).padStart(2, '0')}`);

/**
 * Batch j of a region: 20 resources and one of their K keys. Without `groups`, consecutive batches share resources
 * (group j / K, key j mod K). With `groups` (G), consecutive batches touch different resources (group j mod G,
 * key j / G): needed for API batches, which read the tags of their resources page by page first, so that no other
 * batch changes those tags in the middle of the read.
 */
export function batchTarget(tag: string, j: number, keysPerResource = KEYS_PER_RESOURCE, groups?: number): { resourceIds: string[]; tagKey: string } {
  const group = groups === undefined ? Math.floor(j / keysPerResource) : j % groups;
  const key = groups === undefined ? j % keysPerResource : Math.floor(j / groups);
  return {
    resourceIds: Array.from({ length: IDS_PER_BATCH }, (_, i) => benchId(tag, group * IDS_PER_BATCH + i)),
    tagKey: BACKLOG_KEYS[key] ?? 'bq-00',
  };
}

/** Resource groups of 20 that `batches` batches need at K keys per resource. */
export function groupsFor(batches: number, keysPerResource = KEYS_PER_RESOURCE): number {
  return Math.ceil(batches / keysPerResource);
}

/** Loads the resources that `batches` batches of `tag` need into the emulator, in `region`, with K keys each. */
export async function loadBacklogEstate(
  admin: EmulatorAdmin,
  region: string,
  tag: string,
  batches: number,
  keysPerResource = KEYS_PER_RESOURCE,
): Promise<number> {
  const groups = groupsFor(batches, keysPerResource);
  const tags = Object.fromEntries(BACKLOG_KEYS.slice(0, keysPerResource).map((k) => [k, 'v']));
  const resources: EmulatorResource[] = Array.from({ length: groups * IDS_PER_BATCH }, (_, i) => ({
    id: benchId(tag, i),
    region,
    tags,
    status: 'Activated',
  }));
  for (let i = 0; i < resources.length; i += 20_000) await admin.upsertResources(resources.slice(i, i + 20_000));
  return resources.length;
}

/** Queues `count` batches through the producer API (source api: the worker reads the tags, then untags), strided. */
export async function enqueueWithProducer(producer: Producer, region: string, tag: string, count: number, keysPerResource = KEYS_PER_RESOURCE): Promise<string[]> {
  const ids: string[] = [];
  for (let j = 0; j < count; j += 200) {
    const chunk = Array.from({ length: Math.min(200, count - j) }, (_, k) => batchTarget(tag, j + k, keysPerResource, groupsFor(count, keysPerResource)));
    const results = await Promise.all(
      chunk.map((t) => producer.untag({ region: region as never, resourceIds: t.resourceIds, tagKeys: [t.tagKey], reason: 'benchmark backlog' })),
    );
    for (const r of results) ids.push(...r.jobIds);
  }
  return ids;
}

/** Scan-style jobs (source scan: one UnTagResources call each), added the way the scan processor adds them. */
export function scanJobs(region: string, tag: string, count: number, runId: string): UntagJob[] {
  return Array.from({ length: count }, (_, j) => {
    const t = batchTarget(tag, j);
    const ctx = { policy: 'bench', region, runId };
    return {
      v: 1,
      batchId: batchId(ctx, t.resourceIds, [t.tagKey], false),
      policy: 'bench',
      region: region as UntagJob['region'],
      runId,
      resourceIds: t.resourceIds,
      tagKeys: [t.tagKey],
      all: false,
      source: 'scan',
      dryRun: false,
      reason: 'benchmark backlog',
    };
  });
}

/** Adds jobs to a queue in chunks of 500 with the production job options (jobId = batchId). */
export async function addJobs(queue: Queue, jobs: readonly UntagJob[]): Promise<void> {
  const opts = untagJobOptions({ attempts: 8, completedRetentionHours: 24, failedRetentionDays: 14 });
  for (let i = 0; i < jobs.length; i += 500) {
    await queue.addBulk(jobs.slice(i, i + 500).map((data) => ({ name: 'untag', data, opts: { ...opts, jobId: data.batchId } })));
  }
}
