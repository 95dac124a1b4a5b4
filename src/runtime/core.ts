// Builds the parts every mode shares: Redis, metrics, rate limiter, cloud client, ledger, queues, workers.
import { Queue } from 'bullmq';
import pLimit from 'p-limit';
import { Registry } from 'prom-client';
import {
  classifyError, createCloudClient, type CloudApi, type CloudClientOptions, type CloudHooks, type SdkCredentialsProvider,
} from '../cloud/index.js';
import type { AppConfig } from '../config/index.js';
import { createLogger, type Logger } from '../logging/index.js';
import { codeLabel, collectProcessMetrics, createMetrics, registerRedisNodeGauge, type Metrics } from '../metrics/index.js';
import { isKnownRegion } from '../model.js';
import { createRateLimiter, type RateLimiter } from '../ratelimit/index.js';
import {
  SCAN_QUEUE,
  checkRedis,
  createLedger,
  connectionErrorReporter,
  topologyKindOf,
  createRedis,
  reportErrors,
  createScanLease,
  scanJobOptions,
  untagJobOptions,
  untagQueueName,
  type Ledger,
  type RedisClient,
} from '../queue/index.js';
import type { PageRetry } from '../discovery/index.js';
import { createWorkerPool, jitteredBackoff, type WorkerPool } from '../worker/index.js';

/** How often a replica whose credentials were refused tries one read call to see if they work again. */
const AUTH_PROBE_MS = 15_000;

export interface RuntimeOptions {
  /** Defaults to JSON lines on stdout at the configured level. */
  logger?: Logger;
  /** Explicit keys (the demo's emulator keys); otherwise the SDK's default credential chain. */
  credentials?: { accessKeyId: string; accessKeySecret: string };
  /** A member account's assumed-role credentials (runtime/accounts.ts); wins over `credentials`. */
  credentialsProvider?: SdkCredentialsProvider;
  now?: () => Date;
  /** While credentials are refused, how often to probe with one read call (default 15 s). */
  authProbeMs?: number;
  /**
   * Run-scoped queues: with a scope, the scan and untag queues get the suffix `-<scope>`, so this process's
   * workers take only the jobs of its own run (`run --once`), never a daemon's scheduled scans or batches.
   */
  queueScope?: string;
  /** Tests only: awaited before each Redis write of a scan (crash-point tests stop a scan there). */
  beforeScanWrite?: (point: string) => Promise<void> | void;
  /** Daemon: how often job schedulers are re-synced and the policy set announced (default 30 s). */
  resyncMs?: number;
  /** Daemon: how long two policy sets may share the prefix before it is reported (default 10 min). */
  conflictGraceMs?: number;
  /** Daemon: how often it computes its own readiness for tagwarden_ready (default 5 s). */
  readyRefreshMs?: number;
  /** Daemon with an accounts file: how often accounts are re-read (default: directory.refreshEvery, else 5 min). */
  accountsRefreshMs?: number;
  /** Daemon: the package version shown in the OpenAPI document. */
  version?: string;
  /** Page retries of a scan's reads (default: the config's retry attempts); `run --once --fail-fast` sets 0. */
  pageRetries?: number;
  /** Tests only: jobs per addBulk while a scan enqueues (default 500). */
  enqueueChunk?: number;
  /** Tests only: connections per ListVpcPeerConnections page a scan asks for (default 100). */
  listPageSize?: number;
}

/** Credential health, fed by every cloud call: one auth failure marks the replica unfit for work. */
export interface AuthState {
  failing: boolean;
  code?: string;
}

export interface Core {
  config: AppConfig;
  logger: Logger;
  redis: RedisClient;
  registry: Registry;
  metrics: Metrics;
  limiter: RateLimiter;
  cloud: CloudApi;
  ledger: Ledger;
  auth: AuthState;
  scanQueue: Queue;
  queueFor(region: string): Queue;
  queues(): Queue[];
  now(): Date;
  /** Adds a listener awaited with the access key ID each cloud request is about to be signed with. */
  onSignedWith(listener: (accessKeyId: string) => Promise<void> | void): void;
  createWorkers(): WorkerPool;
  close(): Promise<void>;
}

/** Builds the shared parts; nothing runs until the caller starts workers. */
export function createCore(config: AppConfig, options: RuntimeOptions = {}): Core {
  const logger = options.logger ?? createLogger({ level: config.logLevel, secrets: config.secrets, base: { service: 'tagwarden' } });
  const now = options.now ?? (() => new Date());
  const reportError = connectionErrorReporter(logger);
  const redis = createRedis(config.redisUrl, { logger });
  const registry = new Registry();
  collectProcessMetrics(registry);

  const jobOptions = jobOptionsOf(config);
  const scoped = (name: string) => (options.queueScope ? `${name}-${options.queueScope}` : name);
  const scanQueueName = scoped(SCAN_QUEUE);
  const untagName = (region: string) => scoped(untagQueueName(config.accountId, region));
  const scanQueue = reportErrors(new Queue(scanQueueName, { connection: redis, prefix: config.queuePrefix }), scanQueueName, reportError);
  const untagQueues = new Map<string, Queue>();
  const queueFor = (region: string): Queue => {
    let queue = untagQueues.get(region);
    if (!queue) {
      const name = untagName(region);
      queue = reportErrors(new Queue(name, { connection: redis, prefix: config.queuePrefix }), name, reportError);
      untagQueues.set(region, queue);
    }
    return queue;
  };
  for (const region of config.regions) queueFor(region);
  const unlisted = config.regions.filter((r) => !isKnownRegion(r));
  if (unlisted.length > 0) logger.warn('regions not in the VpcPeer endpoint list are governed anyway; check the IDs', { regions: unlisted });
  const queues = () => [scanQueue, ...untagQueues.values()];

  const metrics = createMetrics(
    registry,
    { policies: [], regions: config.regions, queues: queues().map((q) => q.name) },
    // Read at scrape time; skipped while Redis is away (commands would wait for it), bounded otherwise.
    async () => {
      if (redis.status !== 'ready') return [];
      const read = Promise.all(queues().map(async (q) => ({ queue: q.name, counts: await q.getJobCounts('waiting', 'active', 'delayed', 'failed') })));
      return withTimeout(read, 2_000, []);
    },
  );
  // Which masters answer, named by address: the node in trouble during a failover or an outage.
  registerRedisNodeGauge(registry, async () =>
    (await checkRedis(redis, 1_000)).nodes.map((n) => ({ topology: topologyKindOf(redis), node: n.address, role: n.role, ok: n.ok })),
  );
  const limiter = createRateLimiter(redis, {
    prefix: config.queuePrefix,
    account: config.accountId,
    quotas: config.quotas,
    windowMs: config.quotaWindowMs,
    fraction: config.quotaFraction,
  });
  const auth: AuthState = { failing: false };
  const authListeners: Array<(failing: boolean) => void> = [];
  const signListeners: Array<(accessKeyId: string) => Promise<void> | void> = [];
  // Take the region's rate first, then the process's concurrency slot (never hold a shared slot while waiting
  // for a region); shutdown cancels a wait for the rate.
  const limit = pLimit(config.concurrency);
  const shutdown = new AbortController();
  const hooks: CloudHooks = {
    before: async (api, region) => {
      await limiter.acquire(region, api, shutdown.signal);
    },
    slot: (send) => limit(send),
    signedWith: async (accessKeyId) => {
      for (const listener of signListeners) await listener(accessKeyId);
    },
    after: (api, region, outcome) => {
      metrics.apiRequests.inc({ api, region, code: codeLabel(outcome.code) });
      metrics.apiDuration.observe({ api }, outcome.seconds);
      const kind = outcome.failure?.kind;
      if (kind === 'throttled') {
        metrics.throttled.inc({ api, region });
        limiter.penalize(region, api, outcome.failure?.retryAfterMs).catch((err: unknown) => logger.warn('rate penalty not recorded', { err }));
      }
      if (kind === 'auth') {
        auth.code = outcome.code;
        if (!auth.failing) {
          auth.failing = true;
          metrics.authFailing.set(1);
          logger.error('cloud credentials refused', { api, region, code: outcome.code });
          for (const listener of authListeners) listener(true);
        }
      } else if (!outcome.failure && auth.failing) {
        auth.failing = false;
        delete auth.code;
        metrics.authFailing.set(0);
        logger.info('cloud credentials accepted again', { api, region });
        for (const listener of authListeners) listener(false);
      }
    },
  };
  const cloud = createCloudClient({
    ...cloudOptionsOf(config, options.credentials),
    ...(options.credentialsProvider ? { credentialsProvider: options.credentialsProvider } : {}),
  }, hooks);
  const ledger = createLedger(redis, config.queuePrefix);
  let probe: NodeJS.Timeout | undefined;

  return {
    config,
    logger,
    redis,
    registry,
    metrics,
    limiter,
    cloud,
    ledger,
    auth,
    scanQueue,
    queueFor,
    queues,
    now,
    onSignedWith(listener) {
      signListeners.push(listener);
    },
    createWorkers() {
      const pool = createWorkerPool(
        {
          connection: redis,
          prefix: config.queuePrefix,
          account: config.accountId,
          regions: config.regions,
          queueNames: { scan: scanQueueName, untag: untagName },
          concurrency: config.concurrency,
          scanConcurrency: config.scanConcurrency,
          backoff: { baseMs: config.retryBaseMs, maxMs: config.retryMaxMs },
          stalledIntervalMs: config.stalledIntervalMs,
          lockDurationMs: config.lockDurationMs,
          drainTimeoutMs: config.drainTimeoutMs,
          untagLimiter: { max: untagLimiterMax(config), durationMs: config.quotaWindowMs },
          metrics,
          logger,
          secrets: config.secrets,
        },
        {
          cloud,
          classify: classifyError,
          pageRetry: options.pageRetries === undefined ? pageRetryOf(config) : { ...pageRetryOf(config), maxFailures: options.pageRetries },
          metrics,
          ledger,
          logger,
          now,
          dryRun: config.dryRun,
          throttleDelayMs: Math.max(1_000, Math.round(config.quotaWindowMs / 60)),
          untagJobOptions: jobOptions.untag,
          lease: createScanLease(redis, config.queuePrefix),
          leaseMs: scanLeaseMs(config),
          ...(options.beforeScanWrite ? { beforeWrite: options.beforeScanWrite } : {}),
          ...(options.enqueueChunk ? { enqueueChunk: options.enqueueChunk } : {}),
          ...(options.listPageSize ? { pageSize: options.listPageSize } : {}),
          packing: config.packing,
        },
        queueFor,
      );
      // While the credentials are refused every call would fail the same way: stop taking untag jobs (the
      // backlog waits instead of failing batch by batch) and probe with one cheap read until it succeeds.
      authListeners.push((failing) => {
        if (failing) {
          pool.pauseUntag();
          probe ??= setInterval(() => {
            void (async () => {
              for await (const _ of cloud.listPeerConnections(config.regions[0] ?? 'cn-hangzhou', { maxResults: 1 })) break;
            })().catch(() => undefined);
          }, options.authProbeMs ?? AUTH_PROBE_MS);
        } else {
          clearInterval(probe);
          probe = undefined;
          pool.resumeUntag();
        }
      });
      return pool;
    },
    async close() {
      clearInterval(probe);
      shutdown.abort(new Error('shutting down'));
      await Promise.all(queues().map((q) => q.close().catch(() => undefined)));
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** BullMQ's per-queue limiter maximum on untag workers: twice the shared rate, a loose ceiling that rarely binds. */
export function untagLimiterMax(config: AppConfig): number {
  return Math.max(2, Math.ceil(2 * config.quotas.UnTagResources * config.quotaFraction));
}

/**
 * How the dashboard shows the queues: an untag queue's card title is its region (a card cuts long titles, all
 * the more beside a badge: `untag-<account>-<region>` with a 16-digit account lost its region), its info tip
 * the full queue name and the account (one deployment, one account).
 */
export function dashboardLabels(core: Pick<Core, 'config' | 'scanQueue' | 'queueFor'>): Record<string, { displayName: string; description: string }> {
  const labels: Record<string, { displayName: string; description: string }> = {
    [core.scanQueue.name]: { displayName: 'scans (every region)', description: `queue ${core.scanQueue.name}: scan jobs of every policy and region` },
  };
  for (const region of core.config.regions) {
    const name = core.queueFor(region).name;
    labels[name] = { displayName: region, description: `queue ${name}: UnTagResources batches of account ${core.config.accountId} in ${region}` };
  }
  return labels;
}

/**
 * How long a scan lease lives without renewal: twice a job lock, so a scan whose process died frees its
 * (policy, region) about when BullMQ hands its job to another worker.
 */
export function scanLeaseMs(config: AppConfig): number {
  return Math.max(2 * config.lockDurationMs, 2_000);
}

/** Resolves with `promise`, or with `fallback` once `ms` have passed. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** How to reach the cloud, from the config (and explicit keys, e.g. the demo's emulator keys). */
export function cloudOptionsOf(config: AppConfig, credentials?: RuntimeOptions['credentials']): CloudClientOptions {
  return {
    endpoint: config.endpoint,
    connectTimeoutMs: config.connectTimeoutMs,
    readTimeoutMs: config.readTimeoutMs,
    maxResponseBytes: config.maxResponseBytes,
    signatureVersion: config.signatureVersion,
    ...(credentials ? { credentials } : {}),
  };
}

/** Scans resume a failed page up to the batch retry budget, with the same capped, jittered backoff. */
export function pageRetryOf(config: AppConfig): PageRetry {
  return {
    classify: classifyError,
    maxFailures: config.retryAttempts,
    backoff: jitteredBackoff({ baseMs: config.retryBaseMs, maxMs: config.retryMaxMs }),
  };
}

/** Job options derived from the config, shared by scans and producers. */
export function jobOptionsOf(config: AppConfig) {
  const retention = {
    attempts: config.retryAttempts,
    completedRetentionHours: config.completedRetentionHours,
    failedRetentionDays: config.failedRetentionDays,
  };
  return { retention, scan: scanJobOptions(retention), untag: untagJobOptions(retention) };
}
