// The daemon over many accounts: one member governor (runtime/daemon.ts startGovernor) per account whose role
// was assumed, each with its own credentials, quota scope, queues, ledger and schedulers under its account
// prefix; one HTTP server for all. Accounts come from the accounts file and/or Resource Directory ListAccounts
// and are re-read periodically; an account whose role cannot be assumed is logged, counted, shown in /readyz
// and GET /v1/accounts, and skipped while the others go on.
import { Counter, Gauge, AggregatorRegistry, Registry } from 'prom-client';
import { policyGovernsAccount, type Account } from '../accounts/index.js';
import type { AppConfig } from '../config/index.js';
import { describeConfig } from '../config/index.js';
import { TagwardenError } from '../errors.js';
import { eventAccountId, parseDelivery, type EventsAnswer } from '../events/index.js';
import { createHttpServer, createRedisSessionStore, type AccountView, type PolicyView, type ReadinessReport } from '../http/index.js';
import { createLogger } from '../logging/index.js';
import { collectProcessMetrics } from '../metrics/index.js';
import { readPolicySources } from '../policy-files/index.js';
import { compilePolicies } from '../policy/index.js';
import { createRedis } from '../queue/index.js';
import { accountConfig, accountCredentialsOf, loadAccounts, mergedJobInspector, readAccountsFile } from './accounts.js';
import { withTimeout, type RuntimeOptions } from './core.js';
import { startGovernor, type Daemon } from './daemon.js';

/** How often the accounts file (and the directory, unless `directory.refreshEvery` says) is re-read. */
const ACCOUNTS_REFRESH_MS = 5 * 60_000;

type Governor = Awaited<ReturnType<typeof startGovernor>>;

interface Member {
  account: Account;
  state: 'starting' | 'governed' | 'skipped';
  reason?: string;
  governor?: Governor;
}


/** `{"events": [...]}`, the batch form that is not itself a CloudEvent. */
const isBatchObject = (body: unknown): boolean =>
  typeof body === 'object' && body !== null && !Array.isArray(body) && Array.isArray((body as Record<string, unknown>)['events']) && !Object.hasOwn(body, 'specversion');

const roleOf = (a: Account) => ({ accountId: a.id, roleArn: a.roleArn, ...(a.externalId === undefined ? {} : { externalId: a.externalId }) });
const sameRole = (a: Account, b: Account) => a.roleArn === b.roleArn && a.externalId === b.externalId;

/** Starts the many-accounts daemon (TAGWARDEN_ACCOUNTS_FILE set). */
export async function startAccountsDaemon(config: AppConfig, options: RuntimeOptions = {}): Promise<Daemon> {
  const logger = options.logger ?? createLogger({ level: config.logLevel, secrets: config.secrets, base: { service: 'tagwarden' } });
  logger.info('starting', { config: describeConfig(config), accounts: 'file' });
  const accountsFile = config.accountsFile as string;
  // Session secrets join the redaction list of every log line and answer.
  const secrets: string[] = [...config.secrets];
  const onSecrets = (values: readonly string[]) => {
    for (const v of values) if (!secrets.includes(v)) secrets.push(v);
  };
  const registry = new Registry();
  collectProcessMetrics(registry);
  const accountUp = new Gauge({
    name: 'tagwarden_account_up',
    help: '1 while the account is governed (its role assumed), 0 while it is skipped.',
    labelNames: ['account'] as const,
    registers: [registry],
  });
  const assumeCalls = new Counter({
    name: 'tagwarden_sts_assume_role_total',
    help: 'STS AssumeRole calls per member account, by outcome (ok, denied, error).',
    labelNames: ['account', 'outcome'] as const,
    registers: [registry],
  });
  const ready = new Gauge({ name: 'tagwarden_ready', help: '1 while the daemon is ready.', registers: [registry] });
  const credentials = accountCredentialsOf(config, {
    ...(options.credentials ? { credentials: options.credentials } : {}),
    onSecrets,
    onAssume: (e) => assumeCalls.inc({ account: e.accountId, outcome: e.outcome }),
  });
  const redis = createRedis(config.redisUrl, { logger });
  const members = new Map<string, Member>();
  let closing = false;
  let refreshMs = options.accountsRefreshMs ?? ACCOUNTS_REFRESH_MS;

  const startMember = async (m: Member): Promise<void> => {
    const status = await credentials.check(roleOf(m.account));
    if (closing) return;
    if (status.state !== 'ok') {
      const reason = `role not assumed: ${status.lastError ?? status.state}`;
      if (m.state !== 'skipped' || m.reason !== reason) {
        logger.error('account skipped: its role cannot be assumed', { account: m.account.id, accountName: m.account.name, code: status.lastError });
      }
      m.state = 'skipped';
      m.reason = reason;
      accountUp.set({ account: m.account.id }, 0);
      return;
    }
    const account = m.account;
    m.governor = await startGovernor(
      accountConfig(config, account),
      {
        ...options,
        logger: logger.child({ account: account.id }),
        credentialsProvider: credentials.providerFor(roleOf(account)),
      },
      { account: account.id, selectPolicy: (p) => policyGovernsAccount(p, account) },
    );
    m.state = 'governed';
    delete m.reason;
    accountUp.set({ account: account.id }, 1);
    logger.info('account governed', { account: account.id, accountName: account.name });
  };

  const stopMember = async (m: Member): Promise<void> => {
    const g = m.governor;
    delete m.governor;
    accountUp.remove({ account: m.account.id });
    for (const outcome of ['ok', 'denied', 'error'] as const) assumeCalls.remove({ account: m.account.id, outcome });
    if (g) await g.close();
  };

  // Re-reads the accounts: new ones start, removed ones stop, skipped ones are tried again (the credentials
  // layer's cool-down bounds how often STS is asked). Serialized.
  let refreshing: Promise<void> = Promise.resolve();
  const refresh = (): Promise<void> => {
    refreshing = refreshing
      .then(async () => {
        if (closing) return;
        const list = await readAccountsFile(accountsFile);
        if (options.accountsRefreshMs === undefined && list.directory?.refreshEveryMs !== undefined) refreshMs = list.directory.refreshEveryMs;
        const accounts = await loadAccounts(config, list, options.credentials ? { credentials: options.credentials } : {});
        const wanted = new Map(accounts.map((a) => [a.id, a]));
        for (const [id, m] of [...members]) {
          const next = wanted.get(id);
          if (next === undefined || !sameRole(next, m.account)) {
            logger.info('account no longer governed here', { account: id });
            members.delete(id);
            await stopMember(m);
          } else {
            m.account = next;
          }
        }
        credentials.retain(new Set(wanted.keys()));
        const work: Array<Promise<void>> = [];
        for (const account of accounts) {
          let m = members.get(account.id);
          if (m === undefined) {
            m = { account, state: 'starting' };
            members.set(account.id, m);
            for (const outcome of ['ok', 'denied', 'error'] as const) assumeCalls.inc({ account: account.id, outcome }, 0);
          }
          if (m.state !== 'governed') {
            const member = m;
            work.push(startMember(member).catch((err: unknown) => {
              member.state = 'skipped';
              member.reason = 'start failed';
              logger.error('account start failed', { account: member.account.id, err });
            }));
          }
        }
        await Promise.all(work);
      })
      .catch((err: unknown) => {
        // A broken accounts file or an unreachable directory keeps the accounts already governed.
        logger.error('accounts refresh failed, the accounts governed so far go on', { err: err instanceof TagwardenError ? err.message : err });
      });
    return refreshing;
  };

  const governed = (): Array<Member & { governor: Governor }> =>
    [...members.values()].filter((m): m is Member & { governor: Governor } => m.state === 'governed' && m.governor !== undefined);

  const readiness = async (): Promise<ReadinessReport> => {
    const ping = redis.status === 'ready' ? await withTimeout(redis.ping().then(() => true, () => false), 1_000, false) : false;
    const checks: ReadinessReport['checks'] = {
      redis: ping ? { ok: true } : { ok: false, detail: `redis not reachable (connection ${redis.status})` },
    };
    const skipped = [...members.values()].filter((m) => m.state === 'skipped');
    const live = governed();
    // A skipped account is reported, not fatal: the others go on (and are what this replica is ready for).
    checks.accounts = {
      ok: live.length > 0 || members.size === 0,
      detail: `${live.length} governed, ${skipped.length} skipped${skipped.length ? `: ${skipped.map((m) => `${m.account.id} (${m.reason ?? 'role not assumed'})`).join(', ')}` : ''}`,
    };
    await Promise.all(live.map(async (m) => {
      const r = await m.governor.readiness();
      // A member's refused credentials are its own trouble (shown here); its Redis or workers are everyone's.
      const failing = Object.entries(r.checks).filter(([, c]) => !c.ok);
      const fatal = failing.filter(([name]) => name !== 'credentials');
      checks[`account ${m.account.id}`] = failing.length === 0
        ? { ok: true }
        : { ok: fatal.length === 0, detail: failing.map(([name, c]) => `${name}: ${c.detail ?? 'failing'}`).join('; ') };
    }));
    const isReady = !closing && Object.values(checks).every((c) => c.ok);
    ready.set(isReady ? 1 : 0);
    return { ready: isReady, checks };
  };

  const memberOf = (id: unknown): Member & { governor: Governor } => {
    if (typeof id !== 'string' || id === '') {
      const known = [...members.keys()];
      throw new TagwardenError('PAYLOAD_INVALID', 'invalid untag request: account missing', {
        details: { problems: [`account: required with an accounts file; one of ${known.slice(0, 20).join(', ')}${known.length > 20 ? ', ...' : ''}`] },
      });
    }
    const m = members.get(id);
    if (m === undefined) {
      throw new TagwardenError('PAYLOAD_INVALID', 'invalid untag request: unknown account', {
        details: { problems: [`account: ${JSON.stringify(id.slice(0, 40))} is not a governed account (GET /v1/accounts lists them)`] },
      });
    }
    if (m.state !== 'governed' || m.governor === undefined) {
      throw new TagwardenError('CONFLICT', `account ${m.account.id} is skipped: ${m.reason ?? 'role not assumed'}`, { details: { account: m.account.id } });
    }
    return m as Member & { governor: Governor };
  };

  const producer = {
    async untag(request: unknown) {
      const body = typeof request === 'object' && request !== null && !Array.isArray(request) ? (request as Record<string, unknown>) : {};
      const m = memberOf(body.account);
      const result = await m.governor.parts.producer.untag(request as Parameters<typeof m.governor.parts.producer.untag>[0]);
      return { ...result, account: m.account.id };
    },
    close: async () => undefined,
  };

  const jobs = mergedJobInspector(() => governed().map((m) => ({ account: m.account.id, jobs: m.governor.parts.jobs })));

  const policies = {
    async list(): Promise<PolicyView[]> {
      const byName = new Map<string, PolicyView & { accounts: Array<{ account: string; halted: boolean; lastRun: unknown }> }>();
      for (const m of governed()) {
        for (const v of await m.governor.parts.policies.list()) {
          const seen = byName.get(v.name) ?? { ...v, halted: false, lastRun: undefined, accounts: [] };
          if (v.halted) seen.halted = true;
          seen.accounts.push({ account: m.account.id, halted: v.halted === true, lastRun: v.lastRun });
          byName.set(v.name, seen);
        }
      }
      if (byName.size === 0) {
        // No account governed yet: still show what the files say.
        const read = await readPolicySources([config.policiesDir]);
        for (const p of compilePolicies(read.sources, new Date()).policies) byName.set(p.name, { name: p.name, source: p.source.file, regions: p.regions, accounts: [] });
      }
      return [...byName.values()];
    },
    async scanNow(name: string) {
      const results = await Promise.all(governed().map(async (m) => ({ account: m.account.id, result: await m.governor.parts.policies.scanNow(name) })));
      const hits = results.filter((r) => r.result !== null);
      if (hits.length === 0) return null;
      return {
        jobIds: hits.flatMap((h) => h.result?.jobIds ?? []),
        scans: hits.flatMap((h) => (h.result?.scans ?? []).map((s) => ({ ...s, account: h.account }))),
      };
    },
  };

  const accounts = {
    list(): Promise<AccountView[]> {
      return Promise.resolve(
        [...members.values()].map((m) => {
          const status = credentials.status(m.account.id);
          return {
            id: m.account.id,
            name: m.account.name,
            source: m.account.source,
            tags: m.account.tags,
            state: m.state,
            ...(m.reason === undefined ? {} : { reason: m.reason }),
            stsCalls: status?.stsCalls ?? 0,
            ...(status?.expiresAt === undefined || m.state !== 'governed' ? {} : { sessionExpiresAt: new Date(status.expiresAt).toISOString() }),
            policies: m.governor?.parts.policyNames() ?? [],
          };
        }),
      );
    },
  };

  // /metrics: this daemon's own series plus every member's (each labelled with its account).
  const merged = {
    contentType: registry.contentType,
    async metrics(): Promise<string> {
      const all = await Promise.all([registry, ...governed().map((m) => m.governor.parts.registry)].map((r) => r.getMetricsAsJSON()));
      return AggregatorRegistry.aggregate(all).metrics();
    },
  };

  const http = createHttpServer({
    logger,
    registry: merged,
    liveness: () => ({ ok: true }),
    readiness,
    api: { token: config.apiToken, open: config.apiOpen, maxBodyBytes: config.maxBodyBytes },
    producer,
    jobs,
    policies,
    accounts,
    secrets,
    sessions: createRedisSessionStore(redis, config.queuePrefix),
    ...(options.version === undefined ? {} : { version: options.version }),
    events: {
      token: config.eventsToken,
      // Each event goes to the governor of its account (EventBridge's aliyunaccountid, else the event's own
      // account fields); an account no governor runs (unknown, or its role not assumed) is acknowledged and
      // ignored, and the next scan of that account is its backstop. The whole delivery is checked first.
      async accept(body: unknown): Promise<EventsAnswer> {
        const events = parseDelivery(body, { maxEvents: config.eventsMaxPerRequest });
        const raw: unknown[] = Array.isArray(body) ? body : isBatchObject(body) ? (body as { events: unknown[] }).events : [body];
        const byAccount = new Map<Governor, unknown[]>();
        let elsewhere = 0;
        events.forEach((event, i) => {
          const account = eventAccountId(event);
          const m = account === undefined ? undefined : members.get(account);
          if (!m?.governor || m.state !== 'governed') {
            elsewhere += 1;
            return;
          }
          const list = byAccount.get(m.governor) ?? [];
          list.push(raw[i]);
          byAccount.set(m.governor, list);
        });
        const answers = await Promise.all([...byAccount].map(([g, list]) => g.parts.events.accept(list)));
        if (elsewhere > 0) logger.info('events of accounts no governor runs, ignored', { events: elsewhere });
        return answers.reduce<EventsAnswer>(
          (sum, a) => ({ received: sum.received + a.received, accepted: sum.accepted + a.accepted, ignored: sum.ignored + a.ignored, duplicates: sum.duplicates + a.duplicates }),
          { received: elsewhere, accepted: 0, ignored: elsewhere, duplicates: 0 },
        );
      },
    },
    get queues() {
      return governed().flatMap((m) => m.governor.parts.queues);
    },
  });
  const { port } = await http.listen(config.httpPort, config.httpHost);
  await redis.ping();
  await refresh();
  const timer = setInterval(() => void refresh(), refreshMs);
  timer.unref();
  await readiness().catch(() => undefined);
  logger.info('started', { port, accounts: members.size, governed: governed().length });

  let closed: Promise<{ drained: boolean }> | undefined;
  return {
    httpPort: port,
    readiness,
    close({ force = false } = {}) {
      closed ??= (async () => {
        closing = true;
        ready.set(0);
        logger.info('stopping', { force });
        clearInterval(timer);
        await refreshing;
        let drained = true;
        try {
          const results = await Promise.allSettled([...members.values()].map(async (m) => {
            const g = m.governor;
            if (!g) return true;
            return (await g.close({ force })).drained;
          }));
          drained = results.every((r) => r.status === 'fulfilled' && r.value);
        } finally {
          try {
            await http.close();
          } finally {
            await redis.quit().catch(() => redis.disconnect());
          }
        }
        logger.info('stopped', { drained });
        return { drained };
      })();
      return closed;
    },
  };
}
