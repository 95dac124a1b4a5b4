// Owns AppConfig: environment + flags -> one validated, frozen object. The only reader of process.env.
// Must not open connections or start anything: modules receive their slice of the config.
import { z } from 'zod';
import { API_NAMES, DOCUMENTED_QUOTAS, KNOWN_REGIONS, regionIdProblem, type ApiName } from '../model.js';
import { TagwardenError } from '../errors.js';
import { parseRedisTopology, redactRedisUrl, topologySecrets } from '../queue/topology.js';

const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no', ''])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const regionList = z
  .string()
  .transform((s) => s.split(',').map((r) => r.trim()).filter(Boolean))
  .pipe(
    z
      .array(
        z.string().superRefine((region, ctx) => {
          const problem = regionIdProblem(region);
          if (problem) ctx.addIssue({ code: 'custom', message: `'${region}' ${problem}` });
        }),
      )
      .min(1),
  );

/** Every setting, its environment variable and its default. The README's configuration table mirrors this. */
export const CONFIG_SCHEMA = z.object({
  /**
   * REDIS_URL: the Redis shared by every replica. `redis://` or `rediss://` (one server or a proxy),
   * `redis+cluster://[user:pass@]h1:p1,h2:p2` (Redis Cluster seed nodes), or
   * `redis+sentinel://[user:pass@]s1:p1,s2:p2/masterName[?sentinelPassword=...]` (Sentinel). TAGWARDEN_REDIS_CLUSTER_NODES
   * or TAGWARDEN_REDIS_SENTINELS with TAGWARDEN_REDIS_SENTINEL_MASTER build the same URLs (see loadConfig).
   */
  redisUrl: z
    .string()
    .superRefine((url, ctx) => {
      try {
        parseRedisTopology(url);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : 'invalid Redis URL' });
      }
    })
    .default('redis://127.0.0.1:6379'),
  /**
   * TAGWARDEN_QUEUE_PREFIX: Redis key prefix, so tests and deployments can share one Redis. On Redis Cluster keep it
   * plain: tagwarden hash-tags every queue and key itself (a `{name}` prefix puts everything in one slot).
   */
  queuePrefix: z
    .string()
    .regex(/^[A-Za-z0-9_.-]*(\{[A-Za-z0-9_.-]+\}[A-Za-z0-9_.-]*)?$/, 'letters, digits, _ . - only, with at most one {tag}')
    .refine((p) => p.length > 0, 'must not be empty')
    .default('tagwarden'),
  /** TAGWARDEN_ENDPOINT: the VpcPeer endpoint, with scheme. */
  endpoint: z.url({ protocol: /^https?$/ }).default('https://vpcpeer.aliyuncs.com'),
  /** TAGWARDEN_SIGNATURE_VERSION: v3 (ACS3-HMAC-SHA256) or v2 (HMAC-SHA1). */
  signatureVersion: z.enum(['v3', 'v2']).default('v3'),
  /** TAGWARDEN_CONNECT_TIMEOUT_MS / TAGWARDEN_READ_TIMEOUT_MS */
  connectTimeoutMs: int(100, 120_000).default(5_000),
  readTimeoutMs: int(100, 300_000).default(10_000),
  /** TAGWARDEN_MAX_RESPONSE_BYTES: the largest cloud response body read (10 MiB); a larger one is a BadResponse. */
  maxResponseBytes: int(1024, 1024 * 1024 * 1024).default(10 * 1024 * 1024),
  /** TAGWARDEN_ACCOUNT_ID: the quota scope; replicas with the same value share one rate limit. */
  accountId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default('default'),
  /**
   * TAGWARDEN_ACCOUNTS_FILE: an AccountList YAML (schemas/accountlist.schema.json). When set, every listed member
   * (and, with its `directory` section, every Resource Directory member) is governed through its assumed role,
   * each with its own quota scope and queues. Unset: one account, the deployment's own credentials.
   */
  accountsFile: z.string().min(1).optional(),
  /** TAGWARDEN_STS_ENDPOINT: STS for AssumeRole (https; http only to a loopback emulator). */
  stsEndpoint: z.url({ protocol: /^https?$/ }).default('https://sts.aliyuncs.com'),
  /** TAGWARDEN_STS_DURATION_SECONDS: member session lifetime asked for (900 to the role's MaxSessionDuration). */
  stsDurationSeconds: int(900, 43_200).default(3_600),
  /** TAGWARDEN_STS_SESSION_NAME: RoleSessionName, shown in each member's ActionTrail. */
  stsSessionName: z.string().regex(/^[A-Za-z0-9._@-]{2,64}$/, '2-64 letters, digits, . _ @ -').default('tagwarden'),
  /** TAGWARDEN_RESOURCE_MANAGER_ENDPOINT: Resource Manager for Resource Directory ListAccounts. */
  resourceManagerEndpoint: z.url({ protocol: /^https?$/ }).default('https://resourcemanager.aliyuncs.com'),
  /** TAGWARDEN_ACCOUNT_CONCURRENCY: accounts `run --once` and `plan` work on at once. */
  accountConcurrency: int(1, 256).default(8),
  /**
   * TAGWARDEN_REGIONS: regions this replica works for (untag queues); defaults to every region VpcPeer lists.
   * A well-formed region VpcPeer does not list (yet) is accepted; the daemon warns about it at start.
   */
  regions: regionList.default([...KNOWN_REGIONS]),
  /** TAGWARDEN_QUOTA_FRACTION: share of the documented quota to use (0-1]. */
  quotaFraction: z.coerce.number().gt(0).max(1).default(0.95),
  /** TAGWARDEN_QUOTA_WINDOW_MS: the quota window (60000 in the real API; shorter for tests and benchmarks). */
  quotaWindowMs: int(100, 3_600_000).default(60_000),
  /** TAGWARDEN_QUOTA_<API> e.g. TAGWARDEN_QUOTA_UNTAGRESOURCES: calls per window, defaults documented. */
  quotas: z.record(z.enum(API_NAMES), z.coerce.number().int().min(1)).default({ ...DOCUMENTED_QUOTAS }),
  /** TAGWARDEN_RETRY_ATTEMPTS: attempts per batch before it fails for good. */
  retryAttempts: int(1, 100).default(8),
  /** TAGWARDEN_RETRY_BASE_MS / TAGWARDEN_RETRY_MAX_MS: exponential backoff with full jitter. */
  retryBaseMs: int(1, 600_000).default(1_000),
  retryMaxMs: int(1, 3_600_000).default(60_000),
  /** TAGWARDEN_CONCURRENCY: API calls in flight per process (p-limit) and jobs per region worker. */
  concurrency: int(1, 256).default(8),
  /**
   * TAGWARDEN_PACKING: how removals become calls. `union` packs resources with different keys into one call
   * when the policy would remove every named key from each of them were it there; `exact` groups resources by
   * their exact key set (version 0.1; every resource carries every key named).
   */
  packing: z.enum(['union', 'exact']).default('union'),
  /** TAGWARDEN_SCAN_CONCURRENCY: scans running at once per region per process (the List quota is per region). */
  scanConcurrency: int(1, 64).default(2),
  /** TAGWARDEN_DRAIN_TIMEOUT_MS: after SIGTERM, how long in-flight calls may finish. Keep under the pod grace period. */
  drainTimeoutMs: int(0, 600_000).default(20_000),
  /** TAGWARDEN_STALLED_INTERVAL_MS: how often a dead worker's jobs are noticed and moved back to wait. */
  stalledIntervalMs: int(1_000, 600_000).default(30_000),
  /** TAGWARDEN_LOCK_DURATION_MS: job lock, renewed while a worker lives. */
  lockDurationMs: int(1_000, 600_000).default(30_000),
  /** TAGWARDEN_FAILED_RETENTION_DAYS: how long failed batches stay listed and retryable. */
  failedRetentionDays: z.coerce.number().min(0).max(3650).default(14),
  /** TAGWARDEN_COMPLETED_RETENTION_HOURS: how long ended batches are kept (also the dedup window of jobIds). */
  completedRetentionHours: z.coerce.number().min(0).max(8760).default(24),
  /** TAGWARDEN_HTTP_HOST / TAGWARDEN_HTTP_PORT */
  httpHost: z.string().min(1).default('0.0.0.0'),
  httpPort: int(0, 65_535).default(8080),
  /** TAGWARDEN_API_TOKEN: bearer token for /v1 and /admin/queues. Without it those stay off. */
  apiToken: z.string().min(16, 'must be at least 16 characters').optional(),
  /** TAGWARDEN_API_OPEN: serve the work-accepting API without a token (for local demos only). */
  apiOpen: bool.default(false),
  /** TAGWARDEN_MAX_BODY_BYTES: largest accepted API request body. */
  maxBodyBytes: int(1_024, 64 * 1024 * 1024).default(1024 * 1024),
  /** TAGWARDEN_POLICIES_DIR: directory (or file) of policies. */
  policiesDir: z.string().min(1).default('policies'),
  /** TAGWARDEN_POLICY_POLL_MS: fallback poll for policy changes (fs events are also watched). */
  policyPollMs: int(100, 3_600_000).default(5_000),
  /** TAGWARDEN_DRY_RUN: force every policy and job into dry-run. */
  dryRun: bool.default(false),
  /** TAGWARDEN_LOG_LEVEL */
  logLevel: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
  /**
   * TAGWARDEN_EVENTS_TOKEN: the EventBridge HTTP target's token (`x-eventbridge-signature-token`) accepted by
   * POST /v1/events, beside the bearer TAGWARDEN_API_TOKEN. Without either, /v1/events is off.
   */
  eventsToken: z.string().min(16, 'must be at least 16 characters').optional(),
  /** TAGWARDEN_EVENTS_WINDOW_MS: events of one region within this window are read and planned together. */
  eventsWindowMs: int(0, 60_000).default(250),
  /** TAGWARDEN_EVENTS_DEDUP_HOURS: how long an event's source+id is remembered (EventBridge retries for up to 24 h). */
  eventsDedupHours: z.coerce.number().min(1).max(720).default(48),
  /** TAGWARDEN_EVENTS_MAX_PER_REQUEST: most events one delivery may carry. */
  eventsMaxPerRequest: int(1, 10_000).default(1_000),
  /** TAGWARDEN_EVENTS_IGNORE_IDENTITIES: access key IDs, principal IDs, user names or ARN prefixes whose events are tagwarden's own. */
  eventsIgnoreIdentities: z.string().transform((s) => s.split(',').map((v) => v.trim()).filter(Boolean)).default([]),
  /** TAGWARDEN_EVENTS_ACCOUNT_IDS: when set, events of other Alibaba Cloud accounts are ignored. */
  eventsAccountIds: z.string().transform((s) => s.split(',').map((v) => v.trim()).filter(Boolean)).default([]),
  /** TAGWARDEN_EVENTS_CONCURRENCY: event windows planned at once per process. */
  eventsConcurrency: int(1, 64).default(4),
});

export type AppConfigInput = z.input<typeof CONFIG_SCHEMA>;
export type AppConfig = Readonly<z.output<typeof CONFIG_SCHEMA>> & {
  /** Secret values read from the environment, registered with the logger for redaction; never logged. */
  readonly secrets: readonly string[];
};

const ENV_NAMES: Record<Exclude<keyof AppConfigInput, 'quotas'>, string> = {
  redisUrl: 'REDIS_URL',
  queuePrefix: 'TAGWARDEN_QUEUE_PREFIX',
  endpoint: 'TAGWARDEN_ENDPOINT',
  signatureVersion: 'TAGWARDEN_SIGNATURE_VERSION',
  connectTimeoutMs: 'TAGWARDEN_CONNECT_TIMEOUT_MS',
  readTimeoutMs: 'TAGWARDEN_READ_TIMEOUT_MS',
  maxResponseBytes: 'TAGWARDEN_MAX_RESPONSE_BYTES',
  accountId: 'TAGWARDEN_ACCOUNT_ID',
  accountsFile: 'TAGWARDEN_ACCOUNTS_FILE',
  stsEndpoint: 'TAGWARDEN_STS_ENDPOINT',
  stsDurationSeconds: 'TAGWARDEN_STS_DURATION_SECONDS',
  stsSessionName: 'TAGWARDEN_STS_SESSION_NAME',
  resourceManagerEndpoint: 'TAGWARDEN_RESOURCE_MANAGER_ENDPOINT',
  accountConcurrency: 'TAGWARDEN_ACCOUNT_CONCURRENCY',
  regions: 'TAGWARDEN_REGIONS',
  quotaFraction: 'TAGWARDEN_QUOTA_FRACTION',
  quotaWindowMs: 'TAGWARDEN_QUOTA_WINDOW_MS',
  retryAttempts: 'TAGWARDEN_RETRY_ATTEMPTS',
  retryBaseMs: 'TAGWARDEN_RETRY_BASE_MS',
  retryMaxMs: 'TAGWARDEN_RETRY_MAX_MS',
  concurrency: 'TAGWARDEN_CONCURRENCY',
  packing: 'TAGWARDEN_PACKING',
  scanConcurrency: 'TAGWARDEN_SCAN_CONCURRENCY',
  drainTimeoutMs: 'TAGWARDEN_DRAIN_TIMEOUT_MS',
  stalledIntervalMs: 'TAGWARDEN_STALLED_INTERVAL_MS',
  lockDurationMs: 'TAGWARDEN_LOCK_DURATION_MS',
  failedRetentionDays: 'TAGWARDEN_FAILED_RETENTION_DAYS',
  completedRetentionHours: 'TAGWARDEN_COMPLETED_RETENTION_HOURS',
  httpHost: 'TAGWARDEN_HTTP_HOST',
  httpPort: 'TAGWARDEN_HTTP_PORT',
  apiToken: 'TAGWARDEN_API_TOKEN',
  apiOpen: 'TAGWARDEN_API_OPEN',
  maxBodyBytes: 'TAGWARDEN_MAX_BODY_BYTES',
  policiesDir: 'TAGWARDEN_POLICIES_DIR',
  policyPollMs: 'TAGWARDEN_POLICY_POLL_MS',
  dryRun: 'TAGWARDEN_DRY_RUN',
  logLevel: 'TAGWARDEN_LOG_LEVEL',
  eventsToken: 'TAGWARDEN_EVENTS_TOKEN',
  eventsWindowMs: 'TAGWARDEN_EVENTS_WINDOW_MS',
  eventsDedupHours: 'TAGWARDEN_EVENTS_DEDUP_HOURS',
  eventsMaxPerRequest: 'TAGWARDEN_EVENTS_MAX_PER_REQUEST',
  eventsIgnoreIdentities: 'TAGWARDEN_EVENTS_IGNORE_IDENTITIES',
  eventsAccountIds: 'TAGWARDEN_EVENTS_ACCOUNT_IDS',
  eventsConcurrency: 'TAGWARDEN_EVENTS_CONCURRENCY',
};

/** The environment variable of a setting (`retryAttempts` -> `TAGWARDEN_RETRY_ATTEMPTS`), if it has one. */
export function envNameOf(key: string): string | undefined {
  return key in ENV_NAMES ? ENV_NAMES[key as keyof typeof ENV_NAMES] : undefined;
}

/** Read by loadConfig besides ENV_NAMES: Redis Cluster seed nodes or Sentinels listed one by one. */
const REDIS_TOPOLOGY_ENV = ['TAGWARDEN_REDIS_CLUSTER_NODES', 'TAGWARDEN_REDIS_SENTINELS', 'TAGWARDEN_REDIS_SENTINEL_MASTER'];

/** Environment variable names, for documentation and the deploy checks. */
export const CONFIG_ENV_NAMES: readonly string[] = [
  ...Object.values(ENV_NAMES),
  ...REDIS_TOPOLOGY_ENV,
  ...API_NAMES.map((api) => `TAGWARDEN_QUOTA_${api.toUpperCase()}`),
];

const SECRET_ENV = ['ALIBABA_CLOUD_ACCESS_KEY_SECRET', 'ALIBABA_CLOUD_SECURITY_TOKEN', 'TAGWARDEN_API_TOKEN', 'TAGWARDEN_EVENTS_TOKEN'];

/**
 * Builds the config: flags (overrides) win over the environment, which wins over defaults.
 * Throws one CONFIG_INVALID error listing every problem.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<AppConfigInput> = {}): AppConfig {
  const raw: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(ENV_NAMES)) {
    const value = env[name];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const quotas: Partial<Record<ApiName, string>> = {};
  for (const api of API_NAMES) {
    const value = env[`TAGWARDEN_QUOTA_${api.toUpperCase()}`];
    if (value) quotas[api] = value;
  }
  raw.quotas = { ...DOCUMENTED_QUOTAS, ...quotas, ...(overrides.quotas ?? {}) };
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined && key !== 'quotas') raw[key] = value;
  }
  // Cluster seed nodes or Sentinels given one by one: the credentials (if any) come from REDIS_URL.
  const clusterNodes = env.TAGWARDEN_REDIS_CLUSTER_NODES?.trim();
  const sentinels = env.TAGWARDEN_REDIS_SENTINELS?.trim();
  const sentinelMaster = env.TAGWARDEN_REDIS_SENTINEL_MASTER?.trim();
  const multi: string[] = [];
  if (clusterNodes && sentinels) multi.push('TAGWARDEN_REDIS_CLUSTER_NODES and TAGWARDEN_REDIS_SENTINELS: set one of them, not both');
  if (sentinels && !sentinelMaster) multi.push('TAGWARDEN_REDIS_SENTINEL_MASTER: required with TAGWARDEN_REDIS_SENTINELS');
  if (sentinelMaster && !sentinels) multi.push('TAGWARDEN_REDIS_SENTINELS: required with TAGWARDEN_REDIS_SENTINEL_MASTER');
  if (multi.length > 0) throw new TagwardenError('CONFIG_INVALID', `invalid configuration:\n  ${multi.join('\n  ')}`, { details: { problems: multi } });
  if ((clusterNodes || sentinels) && overrides.redisUrl === undefined) {
    const base = typeof raw.redisUrl === 'string' ? raw.redisUrl : 'redis://';
    const tls = base.startsWith('rediss');
    const userinfo = /^[a-z+]+:\/\/([^@/?#]*)@/.exec(base)?.[1];
    const auth = userinfo ? `${userinfo}@` : '';
    raw.redisUrl = clusterNodes
      ? `redis${tls ? 's' : ''}+cluster://${auth}${clusterNodes.replace(/\s+/g, '')}`
      : `redis${tls ? 's' : ''}+sentinel://${auth}${(sentinels ?? '').replace(/\s+/g, '')}/${encodeURIComponent(sentinelMaster ?? '')}`;
  }
  const parsed = CONFIG_SCHEMA.superRefine((c, ctx) => {
    // With many accounts each account's keys are under its own hash tag (queue/names.ts accountQueuePrefix):
    // Redis hashes the first {...} of a key, so braces in the prefix would put every account in one slot.
    if (c.accountsFile !== undefined && /[{}]/.test(c.queuePrefix)) {
      ctx.addIssue({ code: 'custom', path: ['queuePrefix'], message: 'with TAGWARDEN_ACCOUNTS_FILE, no braces: each account is its own Redis Cluster hash tag' });
    }
  }).safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '');
      const name = key in ENV_NAMES ? ENV_NAMES[key as keyof typeof ENV_NAMES] : key;
      return `${name}${issue.path.length > 1 ? '.' + issue.path.slice(1).join('.') : ''}: ${issue.message}`;
    });
    throw new TagwardenError('CONFIG_INVALID', `invalid configuration:\n  ${problems.join('\n  ')}`, {
      details: { problems },
    });
  }
  const secrets = SECRET_ENV.map((name) => env[name]).filter((v): v is string => typeof v === 'string' && v.length >= 4);
  secrets.push(...topologySecrets(parseRedisTopology(parsed.data.redisUrl)).filter((s) => s.length >= 4));
  if (parsed.data.apiToken) secrets.push(parsed.data.apiToken);
  if (parsed.data.eventsToken) secrets.push(parsed.data.eventsToken);
  return deepFreeze({ ...parsed.data, secrets: [...new Set(secrets)] });
}

/** A view of the config that is safe to log: secrets and credentials in URLs removed. */
export function describeConfig(config: AppConfig): Record<string, unknown> {
  const { secrets: _secrets, apiToken, eventsToken, redisUrl, ...rest } = config;
  return {
    ...rest,
    redisUrl: redactRedisUrl(redisUrl),
    apiToken: apiToken ? 'set' : 'unset',
    eventsToken: eventsToken ? 'set' : 'unset',
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
