// The long-running daemon: HTTP first (probes answer while Redis is awaited), then workers, then policies.
import { Queue, Worker } from 'bullmq';
import type { Registry } from 'prom-client';
import pLimit from 'p-limit';
import type { AppConfig } from '../config/index.js';
import {
  createEventIntake,
  createOwnIdentityRecorder,
  createEventStore,
  createWindowProcessor,
  eventWindowQueueName,
  type EventsAnswer,
} from '../events/index.js';
import { describeConfig } from '../config/index.js';
import { createHttpServer, createRedisSessionStore, type PolicyView, type ReadinessReport } from '../http/index.js';
import { formatFinding, type CompiledPolicy } from '../policy/index.js';
import { readPolicySources, watchPolicySources, type PolicyWatcher } from '../policy-files/index.js';
import { checkRedis, connectionErrorReporter, createJobInspector, createProducer, createScanLease, reportErrors, type JobInspector, type Producer } from '../queue/index.js';
import { createPolicyScheduler, createPolicySet, requestScan } from '../scheduler/index.js';
import { createCore, dashboardLabels, jobOptionsOf, pageRetryOf, untagLimiterMax, withTimeout, type RuntimeOptions } from './core.js';
import { warnLegacyQueues } from './legacy-queues.js';
import { createRedisGuard, policySetFingerprint } from './redis-guard.js';

export interface Daemon {
  /** The bound HTTP port (useful with TAGWARDEN_HTTP_PORT=0). */
  readonly httpPort: number;
  readiness(): Promise<ReadinessReport>;
  /**
   * Stops in reverse order: not ready, stop watching policies, drain workers (bounded by drainTimeoutMs),
   * close HTTP, queues and Redis. With force, in-flight jobs are abandoned to their locks (another replica
   * picks them up with the same ClientToken). Idempotent.
   */
  close(options?: { force?: boolean }): Promise<{ drained: boolean }>;
}

/**
 * One member account of a many-accounts daemon (runtime/accounts-daemon.ts): its own core (credentials, quota
 * scope, queues, ledger under its account prefix) runs the policies that govern it; it serves no HTTP of its
 * own: the accounts daemon's one server routes to its parts (events of its account included).
 */
export interface MemberOptions {
  account: string;
  selectPolicy: (policy: CompiledPolicy) => boolean;
}

/** What a member hands the accounts daemon's HTTP server. */
export interface MemberParts {
  producer: Producer;
  jobs: JobInspector;
  policies: { list(): Promise<PolicyView[]>; scanNow(name: string): Promise<{ jobIds: string[]; scans: Array<{ region: string; jobId: string; state: 'running' | 'queued' }> } | null> };
  queues: readonly Queue[];
  registry: Registry;
  policyNames(): readonly string[];
  /** This account's event intake (the accounts daemon hands it the events of its account). */
  events: { accept(body: unknown): Promise<EventsAnswer> };
}

const RESYNC_MS = 30_000;
/** How often the daemon computes its own readiness (tagwarden_ready stays current without a probe). */
const READY_REFRESH_MS = 5_000;
/** Two policy sets on one prefix for longer than this (more than a rollout or a ConfigMap change) is a conflict. */
const CONFLICT_GRACE_MS = 10 * 60_000;

/** Starts the daemon: scheduler, workers, policy reload and the HTTP server. */
export async function startDaemon(config: AppConfig, options: RuntimeOptions = {}): Promise<Daemon> {
  if (config.accountsFile !== undefined) {
    const { startAccountsDaemon } = await import('./accounts-daemon.js');
    return startAccountsDaemon(config, options);
  }
  return startGovernor(config, options);
}

/** The daemon of one account: the whole of it without `member`, or a member account's part (no HTTP). */
export async function startGovernor(config: AppConfig, options: RuntimeOptions, member?: MemberOptions): Promise<Daemon & { parts: MemberParts }> {
  const core = createCore(config, options);
  const { logger, metrics, redis, ledger } = core;
  // Every series of a member carries its account (the accounts daemon merges the members' registries).
  if (member) core.registry.setDefaultLabels({ account: member.account });
  logger.info('starting', { config: describeConfig(config) });
  const jobOptions = jobOptionsOf(config);
  const workers = core.createWorkers();
  const scheduler = createPolicyScheduler({ queue: core.scanQueue, scanJobOptions: jobOptions.scan, logger });
  const resyncMs = options.resyncMs ?? RESYNC_MS;
  const guard = createRedisGuard({
    redis,
    prefix: config.queuePrefix,
    logger,
    metrics,
    now: core.now,
    heartbeatMs: resyncMs,
    conflictGraceMs: options.conflictGraceMs ?? CONFLICT_GRACE_MS,
  });
  let syncPending = false;
  let lastClean = false;
  const policySet = createPolicySet({
    read: () => readPolicySources([config.policiesDir]),
    ...(member ? { select: member.selectPolicy } : {}),
    now: core.now,
    metrics,
    logger,
    onChange: async (policies, clean) => {
      syncPending = true;
      lastClean = clean;
      // While another deployment's policy set shares the prefix, its schedulers are not ours to remove.
      await scheduler.sync(policies, { removeStale: clean && !guard.conflicting() });
      syncPending = false;
      await guard.heartbeat(policySetFingerprint(policies), policies.map((p) => p.name));
      const outside = policies.flatMap((p) => p.regions.filter((r) => !(config.regions as readonly string[]).includes(r)).map((r) => `${p.name}/${r}`));
      if (outside.length) logger.warn('policy regions without an untag worker here (TAGWARDEN_REGIONS)', { outside });
    },
  });
  const producer = createProducer({ connection: redis, prefix: config.queuePrefix, account: config.accountId, retention: jobOptions.retention, logger: core.logger });
  const inspector = createJobInspector({ queues: core.queues(), secrets: config.secrets });
  const lease = createScanLease(redis, config.queuePrefix);
  let closing = false;

  // Re-creates the job schedulers from the running policy set (after Redis lost them, or periodically: a
  // scheduler removed by anything else comes back). Serialized with reloads.
  let reloading: Promise<void> = Promise.resolve();
  const resyncSchedulers = () => {
    reloading = reloading
      .then(async () => {
        if (!policySet.loaded() || closing) return;
        const policies = policySet.policies();
        await scheduler.sync(policies, { removeStale: lastClean && !guard.conflicting() });
        syncPending = false;
        await guard.heartbeat(policySetFingerprint(policies), policies.map((p) => p.name));
      })
      .catch((err: unknown) => {
        syncPending = true;
        logger.warn('job scheduler re-sync failed, will retry', { err });
      });
    return reloading;
  };
  // Event-driven enforcement: deliveries are recorded in Redis, then planned per region window by any replica.
  const eventStore = createEventStore(redis, config.queuePrefix);
  const dedupTtlSeconds = Math.round(config.eventsDedupHours * 3600);
  // Every key we sign with is in Redis before its request leaves, and stays as long as its events may be redelivered.
  core.onSignedWith(createOwnIdentityRecorder({ store: eventStore, ttlSeconds: dedupTtlSeconds, now: core.now, onError: (err) => logger.warn('own access key not recorded, will retry', { err }) }));
  // A BullMQ queue without an `error` listener prints its connection's errors raw (the AUTH command included).
  // A member account takes the events of its account: the accounts daemon's one /v1/events routes them here.
  const windowQueueName = eventWindowQueueName(config.accountId);
  const windows = reportErrors(new Queue(windowQueueName, { connection: redis, prefix: config.queuePrefix }), windowQueueName, connectionErrorReporter(logger));
  const intake = createEventIntake({
    store: eventStore,
    windows,
    windowMs: config.eventsWindowMs,
    dedupTtlSeconds,
    maxEventsPerRequest: config.eventsMaxPerRequest,
    interpret: {
      ignoreIdentities: config.eventsIgnoreIdentities,
      // Events of accounts this deployment does not reach are not ours to act on: the listed ones, else the
      // deployment's own account when TAGWARDEN_ACCOUNT_ID is a real (numeric) account ID.
      accountIds: config.eventsAccountIds.length > 0 ? config.eventsAccountIds : /^\d+$/.test(config.accountId) ? [config.accountId] : [],
      defaultAccount: config.accountId,
    },
    covers: (scope) => policySet.policies().some((p) => p.regions.includes(scope.region)),
    metrics,
    logger,
    now: core.now,
  });
  const windowWorker = new Worker(
    windows.name,
    createWindowProcessor({
      store: eventStore,
      // Every event scope of this governor is its account (a member's intake takes only its account's events).
      account: () => ({ cloud: core.cloud, queueFor: core.queueFor }),
      policies: () => policySet.policies(),
      pageRetry: pageRetryOf(config),
      limit: pLimit(config.concurrency),
      untagJobOptions: jobOptions.untag,
      dryRun: config.dryRun,
      packing: config.packing,
      metrics,
      logger,
      now: core.now,
    }),
    {
      connection: redis,
      prefix: config.queuePrefix,
      autorun: false,
      concurrency: config.eventsConcurrency,
      stalledInterval: config.stalledIntervalMs,
      lockDuration: config.lockDurationMs,
      // As the untag workers: a window whose lock a busy or killed replica lost is retried, not failed, up to 3 times.
      maxStalledCount: 3,
    },
  );
  windowWorker.on('error', (err) => logger.error('worker error', { queue: windowWorker.name, err }));
  windowWorker.on('failed', (job, err) => logger.warn('event window failed', { jobId: job?.id, attempts: job?.attemptsMade, err: err.message }));

  const readiness = async (): Promise<ReadinessReport> => {
    // Every master is pinged (a Cluster's too): the detail names the topology and the node in trouble.
    const health = await checkRedis(redis, 1_000);
    if (health.ok) {
      const lost = await withTimeout(guard.check().catch(() => false), 1_000, false);
      if (lost) void resyncSchedulers();
    }
    const checks = {
      redis: { ok: health.ok, detail: health.detail },
      workers: workers.running() ? { ok: true } : { ok: false, detail: closing ? 'shutting down' : 'workers not running' },
      policies: policySet.loaded()
        ? { ok: true, detail: `${policySet.policies().length} loaded` }
        : { ok: false, detail: 'policies not loaded yet' },
      ...guard.checks(),
      credentials: core.auth.failing
        ? { ok: false, detail: `the API refused our credentials (${core.auth.code ?? 'auth'}); fix credentials or RAM policy` }
        : { ok: true },
    };
    const ready = !closing && Object.values(checks).every((c) => c.ok);
    metrics.ready.set(ready ? 1 : 0);
    return { ready, checks };
  };

  const policies = {
    async list(): Promise<PolicyView[]> {
      const statuses = await ledger.policyStatuses();
      const findings = policySet.findings();
      const views: PolicyView[] = policySet.policies().map((p) => ({
        name: p.name,
        source: p.source.file,
        regions: p.regions,
        schedule: 'everyMs' in p.schedule ? `every ${p.schedule.everyMs / 1000}s` : `cron ${p.schedule.cron}`,
        dryRun: p.mode === 'dryRun' || config.dryRun,
        halted: Object.values(statuses[p.name] ?? {}).some((s) => s.halted === true),
        lastRun: statuses[p.name],
        errors: findings.filter((f) => f.policy === p.name || f.file === p.source.file).map(formatFinding),
      }));
      const broken = findings.filter((f) => f.severity === 'error' && !views.some((v) => v.name === f.policy));
      for (const f of broken) views.push({ name: f.policy ?? `(${f.file})`, source: f.file, errors: [formatFinding(f)] });
      return views;
    },
    async scanNow(name: string) {
      const policy = policySet.policies().find((p) => p.name === name);
      if (!policy) return null;
      const scans = await requestScan(core.scanQueue, lease, policy, jobOptions.scan);
      return { jobIds: scans.map((s) => s.jobId), scans };
    },
  };

  const parts: MemberParts = {
    producer,
    jobs: inspector,
    policies,
    queues: core.queues(),
    registry: core.registry,
    policyNames: () => policySet.policies().map((p) => p.name),
    events: { accept: (body: unknown) => intake.accept(body) },
  };
  const http = member ? undefined : createHttpServer({
    logger,
    registry: core.registry,
    liveness: () => ({ ok: true }),
    readiness,
    api: { token: config.apiToken, open: config.apiOpen, maxBodyBytes: config.maxBodyBytes },
    producer,
    jobs: inspector,
    policies,
    secrets: config.secrets,
    sessions: createRedisSessionStore(redis, config.queuePrefix),
    ...(options.version === undefined ? {} : { version: options.version }),
    events: { token: config.eventsToken, accept: (body: unknown) => intake.accept(body) },
    queues: [...core.queues(), windows],
    queueLabels: dashboardLabels(core),
    rateLimitMax: untagLimiterMax(config),
  });
  // The server logs `http listening` itself.
  const { port } = http ? await http.listen(config.httpPort, config.httpHost) : { port: 0 };

  await redis.ping();
  workers.start();
  // Reloads run one after another, so two syncs never interleave and leave an older version behind.
  const reload = (read?: Parameters<typeof policySet.reload>[0]) => {
    reloading = reloading.then(() => policySet.reload(read)).catch((err: unknown) => {
        logger.error('policy reload failed, will retry', { err });
      });
    return reloading;
  };
  const first = await readPolicySources([config.policiesDir]);
  await reload(first);
  // An upgrade from the names before hash tags: say once what the old queues still hold (never blocks the start).
  void warnLegacyQueues(redis, config.queuePrefix, config.accountId, config.regions, logger);
  // Windows are planned against the loaded policies, so their worker starts only once policies are in.
  windowWorker.run().catch((err: unknown) => logger.error('worker stopped with an error', { queue: windowWorker.name, err }));
  // The first read is the watcher's baseline, so a change made between the two is not missed.
  const watcher: PolicyWatcher = watchPolicySources([config.policiesDir], (read) => void reload(read), {
    baseline: first,
    pollMs: config.policyPollMs,
    onError: (err) => logger.error('policy watch error', { err }),
  });
  // A sync that failed (Redis away) is retried until it lands; and every interval the schedulers are re-synced
  // anyway, so state Redis lost comes back even when no reconnect was seen.
  const resync = setInterval(() => {
    if (syncPending && !policySet.loaded()) void reload();
    else void resyncSchedulers();
  }, resyncMs);
  resync.unref();
  // A reconnect may be to a Redis that forgot everything: check its identity and re-sync at once.
  const onReady = () => {
    void guard
      .check()
      .catch(() => false)
      .then(() => resyncSchedulers());
  };
  redis.on('ready', onReady);
  // tagwarden_ready is kept current by the daemon itself, not only when someone probes /readyz.
  const refresh = setInterval(() => {
    readiness().catch((err: unknown) => logger.warn('readiness check failed', { err }));
  }, options.readyRefreshMs ?? READY_REFRESH_MS);
  refresh.unref();
  await readiness().catch(() => undefined);
  logger.info('started', { port, regions: config.regions.length, policies: policySet.policies().length });

  let closed: Promise<{ drained: boolean }> | undefined;
  return {
    httpPort: port,
    readiness,
    parts,
    close({ force = false } = {}) {
      closed ??= (async () => {
        closing = true;
        metrics.ready.set(0);
        logger.info('stopping', { force });
        clearInterval(resync);
        clearInterval(refresh);
        redis.off('ready', onReady);
        // Each step runs whatever the one before did: one rejected close never leaves HTTP, the producer or
        // Redis open.
        let drained = false;
        try {
          watcher.close();
          // The event windows drain beside the untag and scan workers, within the same bound: BullMQ's graceful
          // close waits for Redis without end (a rotated password hung SIGTERM), and every later close() gets
          // the first one's promise, so pause with a deadline first and then close, by force if it passed.
          const closeWindows = async () => {
            const windowsDrained = !force && (await withTimeout(windowWorker.pause().then(() => true, () => false), config.drainTimeoutMs, false));
            await windowWorker.close(!windowsDrained).catch((err: unknown) => logger.warn('event window worker close failed', { err }));
          };
          [, { drained }] = await Promise.all([closeWindows(), workers.close({ force })]);
        } finally {
          try {
            await http?.close();
          } finally {
            try {
              await producer.close();
              await windows.close().catch(() => undefined);
            } finally {
              await core.close();
            }
          }
        }
        logger.info('stopped', { drained });
        return { drained };
      })();
      return closed;
    },
  };
}
