// Owns every Prometheus instrument tagwarden exposes and their bounded label values.
// Must not read Redis or the cloud itself: queue gauges are filled by a collect callback given in.
import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import { API_NAMES } from '../model.js';
import { logLinesDropped as readLogLinesDropped } from '../logging/index.js';

export const BATCH_OUTCOMES = ['succeeded', 'failed', 'dry_run', 'not_found'] as const;
export type BatchOutcome = (typeof BATCH_OUTCOMES)[number];
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
export const RETRY_REASONS = ['transient', 'throttled', 'stalled', 'not_found', 'internal'] as const;
export type RetryReason = (typeof RETRY_REASONS)[number];
export const POLICY_ERROR_REASONS = ['load', 'validation', 'halted', 'scan'] as const;
export type PolicyErrorReason = (typeof POLICY_ERROR_REASONS)[number];
/** Why an event was acknowledged without action (src/events/actiontrail.ts). */
export const EVENT_IGNORE_REASONS = [
  'not_actiontrail', 'other_event', 'other_service', 'other_resource_type', 'failed_call', 'own_call', 'other_account',
  'no_resources', 'no_tags', 'no_policy',
] as const;
export type EventIgnoreReason = (typeof EVENT_IGNORE_REASONS)[number];

/**
 * The error codes a label may carry. Anything else is reported as `other`, so a misbehaving endpoint
 * cannot grow the series count.
 */
export const KNOWN_ERROR_CODES = [
  'OK',
  'Throttling',
  'Throttling.User',
  'Throttling.Api',
  'ServiceUnavailable',
  'InternalError',
  'BadGateway',
  'BadResponse',
  'NetworkError',
  'Timeout',
  'InvalidInstanceIds.NotFound',
  'ResourceNotFound.InstanceId',
  'IdempotentParameterMismatch',
  'NumberExceed.Tags',
  'NumberExceed.ResourceIds',
  'Forbidden.TagKeys',
  'InvalidInstanceType.NotFound',
  'MissingParameter',
  'InvalidParameter',
  'InvalidAccessKeyId.NotFound',
  'InvalidAccessKeyId.Inactive',
  'SignatureDoesNotMatch',
  'SignatureNonceUsed',
  'InvalidTimeStamp.Expired',
  'Forbidden.RAM',
  'Forbidden.NoPermission',
  'other',
] as const;

/** Maps any error code to a bounded label value. */
export function codeLabel(code: string): string {
  return (KNOWN_ERROR_CODES as readonly string[]).includes(code) ? code : 'other';
}

export interface MetricsScope {
  /** Policy names known now; new ones are added with `addPolicy`. */
  readonly policies: readonly string[];
  readonly regions: readonly string[];
  /** Queue names whose jobs are counted by state. */
  readonly queues: readonly string[];
}

export type QueueCountsReader = () => Promise<ReadonlyArray<{ queue: string; counts: Partial<Record<string, number>> }>>;

/** Creates every instrument on the given registry (never the global one) and zeroes the known label sets. */
export function createMetrics(registry: Registry, scope: MetricsScope, readQueueCounts?: QueueCountsReader) {
  const registers = [registry];
  const tagsRemoved = new Counter({
    name: 'tagwarden_tags_removed_total',
    help: 'Tags removed by UnTagResources, per resource and key (all=true counts the tags carried).',
    labelNames: ['policy', 'region'] as const,
    registers,
  });
  const untagFailures = new Counter({
    name: 'tagwarden_untag_failures_total',
    help: 'Failed UnTagResources attempts by error code, whether retried or not.',
    labelNames: ['policy', 'region', 'code'] as const,
    registers,
  });
  const batches = new Counter({
    name: 'tagwarden_batches_total',
    help: 'Untag batches that ended, by outcome.',
    labelNames: ['policy', 'region', 'outcome'] as const,
    registers,
  });
  const apiRequests = new Counter({
    name: 'tagwarden_api_requests_total',
    help: 'VpcPeer API requests by action, region and result code (OK on success).',
    labelNames: ['api', 'region', 'code'] as const,
    registers,
  });
  const apiDuration = new Histogram({
    name: 'tagwarden_api_request_duration_seconds',
    help: 'VpcPeer API request latency.',
    labelNames: ['api'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const throttled = new Counter({
    name: 'tagwarden_throttled_total',
    help: 'Calls refused by the API for throttling.',
    labelNames: ['api', 'region'] as const,
    registers,
  });
  const retries = new Counter({
    name: 'tagwarden_retries_total',
    help: 'Retries scheduled, by API and reason.',
    labelNames: ['api', 'reason'] as const,
    registers,
  });
  const tagKeysSkipped = new Counter({
    name: 'tagwarden_tag_keys_skipped_total',
    help: 'Carried tag keys a policy would remove that no UnTagResources call can name (over 128 code points, or a URL in them), skipped per resource and key; the other keys are removed.',
    labelNames: ['policy', 'region'] as const,
    registers,
  });
  let droppedSeen = 0;
  const logLinesDropped = new Counter({
    name: 'tagwarden_log_lines_dropped_total',
    help: 'Log lines that could not be written (destination failed or did not keep up) and were dropped.',
    registers,
    collect() {
      const now = readLogLinesDropped();
      if (now > droppedSeen) this.inc(now - droppedSeen);
      droppedSeen = now;
    },
  });
  const queueJobs = new Gauge({
    name: 'tagwarden_queue_jobs',
    help: 'Jobs per queue and state, read from Redis at scrape time.',
    labelNames: ['queue', 'state'] as const,
    registers,
    async collect() {
      if (!readQueueCounts) return;
      const all = await readQueueCounts();
      for (const { queue, counts } of all) {
        for (const state of QUEUE_STATES) this.set({ queue, state }, counts[state] ?? 0);
      }
    },
  });
  const violations = new Gauge({
    name: 'tagwarden_policy_violations',
    help: 'Tags out of compliance at the last scan, per policy and region.',
    labelNames: ['policy', 'region'] as const,
    registers,
  });
  const lastSuccess = new Gauge({
    name: 'tagwarden_policy_last_success_timestamp_seconds',
    help: 'Unix time of the last scan of the policy that ended without error.',
    labelNames: ['policy'] as const,
    registers,
  });
  const scanDuration = new Histogram({
    name: 'tagwarden_scan_duration_seconds',
    help: 'Duration of one scan of a policy in one region.',
    labelNames: ['policy'] as const,
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    registers,
  });
  const policyErrors = new Counter({
    name: 'tagwarden_policy_errors_total',
    help: 'Policy load and validation errors, failed scans and halted runs.',
    labelNames: ['policy', 'reason'] as const,
    registers,
  });
  const policyInterval = new Gauge({
    name: 'tagwarden_policy_interval_seconds',
    help: "The policy's scan interval (schedule.every; for cron, the gap between its next two runs).",
    labelNames: ['policy'] as const,
    registers,
  });
  const policyHalted = new Gauge({
    name: 'tagwarden_policy_halted',
    help: '1 while the policy is halted by its blast-radius cap in the region.',
    labelNames: ['policy', 'region'] as const,
    registers,
  });
  const authFailing = new Gauge({
    name: 'tagwarden_auth_failing',
    help: '1 while the last cloud call failed for authentication or permission.',
    registers,
  });
  const policiesLoaded = new Gauge({
    name: 'tagwarden_policies_loaded',
    help: 'Policies loaded and running.',
    registers,
  });
  const eventsReceived = new Counter({
    name: 'tagwarden_events_received_total',
    help: 'Well-formed CloudEvents received on POST /v1/events.',
    registers,
  });
  const eventsActed = new Counter({
    name: 'tagwarden_events_acted_total',
    help: 'New events that named peering connections to check (read, evaluated, removals enqueued).',
    registers,
  });
  const eventsIgnored = new Counter({
    name: 'tagwarden_events_ignored_total',
    help: 'Events acknowledged without action, by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const eventsDuplicate = new Counter({
    name: 'tagwarden_events_duplicate_total',
    help: 'Events seen before (same CloudEvents source and id), acknowledged and not acted on again.',
    registers,
  });
  const eventsRefused = new Counter({
    name: 'tagwarden_events_refused_total',
    help: 'Deliveries to POST /v1/events refused with 400 (a malformed event; nothing of the delivery is recorded).',
    registers,
  });
  const eventToRemoval = new Histogram({
    name: 'tagwarden_event_to_removal_seconds',
    help: "Time from an event's time to the removal of the forbidden tags it revealed, per resource.",
    buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800],
    registers,
  });
  const ready = new Gauge({
    name: 'tagwarden_ready',
    help: '1 when the replica is ready for work (Redis, workers, policies, credentials).',
    registers,
  });
  const redisStateLost = new Counter({
    name: 'tagwarden_redis_state_lost_total',
    help: 'Times the identity marker in Redis vanished or changed: Redis lost its data (restarted empty, flushed, failed over without it); schedulers are re-created.',
    registers,
  });
  const redisEvictionUnsafe = new Gauge({
    name: 'tagwarden_redis_eviction_unsafe',
    help: '1 while Redis maxmemory-policy is not noeviction (evicted keys are lost jobs and schedulers); the replica is not ready meanwhile.',
    registers,
  });
  const prefixConflict = new Gauge({
    name: 'tagwarden_prefix_conflict',
    help: '1 while another deployment with a different policy set shares this queue prefix (each would remove the other\'s schedulers).',
    registers,
  });

  /** Policy label value -> the regions whose label sets were zeroed for it. */
  const knownPolicies = new Map<string, Set<string>>();
  /**
   * Zeroes every label set of a policy so rates start at 0 rather than appearing mid-flight: only for the
   * regions given (the policy's own; all configured regions for `api`), so 10,000 policies of one region each
   * make 10,000 x 1 region's series, not 10,000 x every region. Called again with more regions, adds those.
   */
  function addPolicy(policy: string, regions: readonly string[] = scope.regions): void {
    let zeroed = knownPolicies.get(policy);
    if (!zeroed) {
      zeroed = new Set();
      knownPolicies.set(policy, zeroed);
      for (const reason of POLICY_ERROR_REASONS) policyErrors.inc({ policy, reason }, 0);
    }
    for (const region of regions) {
      if (zeroed.has(region)) continue;
      zeroed.add(region);
      tagsRemoved.inc({ policy, region }, 0);
      if (policy !== 'api') tagKeysSkipped.inc({ policy, region }, 0);
      for (const outcome of BATCH_OUTCOMES) batches.inc({ policy, region, outcome }, 0);
      if (policy !== 'api') policyHalted.set({ policy, region }, 0);
    }
  }
  for (const policy of ['api', ...scope.policies]) addPolicy(policy);

  /**
   * The `policy` label value for a name read from a job or a finding: the name itself when it is a policy this
   * process loaded or ran (addPolicy), else `unknown`. So a producer or a broken file cannot mint label values.
   */
  function policyLabel(name: string | undefined): string {
    return name !== undefined && knownPolicies.has(name) ? name : 'unknown';
  }

  const perPolicy = [tagsRemoved, untagFailures, batches, tagKeysSkipped, violations, lastSuccess, scanDuration, policyErrors, policyInterval, policyHalted];
  /**
   * Removes every series of the policies not in `keep` (and not `api` or `unknown`): a policy deleted or renamed
   * on reload leaves no series behind, so the series count follows the loaded policies.
   */
  async function retainPolicies(keep: ReadonlySet<string>): Promise<void> {
    const gone = [...knownPolicies.keys()].filter((p) => p !== 'api' && p !== 'unknown' && !keep.has(p));
    if (gone.length === 0) return;
    const goneSet = new Set(gone);
    for (const p of gone) knownPolicies.delete(p);
    for (const metric of perPolicy) {
      const seen = new Set<string>();
      for (const v of (await metric.get()).values) {
        const { le: _le, ...labels } = v.labels as Record<string, string | number>;
        if (!goneSet.has(String(labels.policy))) continue;
        const key = JSON.stringify(labels);
        if (seen.has(key)) continue;
        seen.add(key);
        (metric as { remove(labels: Record<string, string | number>): void }).remove(labels);
      }
    }
  }
  for (const api of API_NAMES) {
    for (const region of scope.regions) {
      apiRequests.inc({ api, region, code: 'OK' }, 0);
      throttled.inc({ api, region }, 0);
    }
    for (const reason of RETRY_REASONS) retries.inc({ api, reason }, 0);
  }
  for (const queue of scope.queues) for (const state of QUEUE_STATES) queueJobs.set({ queue, state }, 0);
  authFailing.set(0);
  ready.set(0);
  logLinesDropped.inc(0);
  redisStateLost.inc(0);
  redisEvictionUnsafe.set(0);
  prefixConflict.set(0);
  for (const reason of EVENT_IGNORE_REASONS) eventsIgnored.inc({ reason }, 0);

  return {
    registry,
    tagsRemoved,
    untagFailures,
    batches,
    apiRequests,
    apiDuration,
    throttled,
    retries,
    queueJobs,
    violations,
    lastSuccess,
    scanDuration,
    policyErrors,
    policyHalted,
    policyInterval,
    authFailing,
    policiesLoaded,
    ready,
    logLinesDropped,
    redisStateLost,
    redisEvictionUnsafe,
    prefixConflict,
    tagKeysSkipped,
    eventsReceived,
    eventsActed,
    eventsIgnored,
    eventsDuplicate,
    eventsRefused,
    eventToRemoval,
    addPolicy,
    policyLabel,
    retainPolicies,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Adds the standard process and Node.js metrics to the registry. */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
}
export { renderMetrics, type RenderableRegistry } from './render.js';
export { registerRedisNodeGauge, type RedisNodeSample } from './redis-nodes.js';
