// Many accounts: the accounts file and Resource Directory -> the governed accounts, one assumed-role
// credentials provider per account, and `run --once` / `plan` over every account, each with its own
// quota scope, queues and ledger (queue/names.ts accountQueuePrefix). A deployment without an accounts
// file never comes here.
import { readFile } from 'node:fs/promises';
import pLimit from 'p-limit';
import {
  accountsOfPolicy, parseAccountList, policyGovernsAccount, restrictAccounts, type Account, type AccountList,
} from '../accounts/index.js';
import {
  createAccountCredentials, listDirectoryAccounts, type AccountCredentials, type AssumeRoleObserver, type AssumeRoleStatus,
} from '../cloud/index.js';
import type { AppConfig } from '../config/index.js';
import { TagwardenError } from '../errors.js';
import { createLogger, type Logger } from '../logging/index.js';
import { formatFinding } from '../policy/index.js';
import { accountQueuePrefix } from '../queue/index.js';
import type { JobInspector, JobView, ListableState, PolicyRunSummary } from '../queue/index.js';
import { runOnce, type OnceOptions, type OnceResult } from './once.js';
import { planPolicies, type PlanOptions, type PlanReport, type PlanRow } from './plan.js';

/** Resource Directory statuses of working members (others are pending, expired or failed invitations). */
const ACTIVE_STATUSES = new Set(['CreateSuccess', 'InviteSuccess', 'PromoteSuccess']);
/** After a refused AssumeRole, fail fast for this long (doubling per failure) before asking STS again. */
const ASSUME_RETRY_MS = 60_000;

/** Reads and validates the accounts file; every problem at file:line:column in one CONFIG_INVALID error. */
export async function readAccountsFile(path: string): Promise<AccountList> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new TagwardenError('CONFIG_INVALID', `accounts file ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const { list, findings } = parseAccountList({ file: path, text });
  if (list === undefined) {
    throw new TagwardenError('CONFIG_INVALID', `invalid accounts file:\n  ${findings.map(formatFinding).join('\n  ')}`, {
      details: { problems: findings.map(formatFinding) },
    });
  }
  return list;
}

export interface AccountsSourceOptions {
  /** The deployment's own keys (tests, demo); otherwise the default chain. */
  credentials?: { accessKeyId: string; accessKeySecret: string };
}

/**
 * The governed accounts: the file's, plus (with `directory:`) every working member ListAccounts returns,
 * reached through `acs:ram::<id>:role/<roleName>`. A member listed in the file keeps the file's entry.
 */
export async function loadAccounts(config: AppConfig, list: AccountList, options: AccountsSourceOptions = {}): Promise<Account[]> {
  const accounts = [...list.accounts];
  if (list.directory !== undefined) {
    const members = await listDirectoryAccounts({
      endpoint: config.resourceManagerEndpoint,
      connectTimeoutMs: config.connectTimeoutMs,
      readTimeoutMs: config.readTimeoutMs,
      signatureVersion: config.signatureVersion,
      ...(options.credentials ? { credentials: options.credentials } : {}),
    });
    const known = new Set(accounts.map((a) => a.id));
    for (const m of members) {
      if (known.has(m.id) || !ACTIVE_STATUSES.has(m.status)) continue;
      accounts.push({
        id: m.id,
        name: m.name,
        roleArn: `acs:ram::${m.id}:role/${list.directory.roleName}`,
        tags: m.tags,
        source: 'directory',
        ...(list.directory.externalId === undefined ? {} : { externalId: list.directory.externalId }),
      });
    }
  }
  return accounts;
}

/** The config of one member account: its own quota scope (accountId) and Redis prefix. */
export function accountConfig(config: AppConfig, account: Account): AppConfig {
  return Object.freeze({ ...config, accountId: account.id, queuePrefix: accountQueuePrefix(config.queuePrefix, account.id) });
}

/** The per-account credentials layer of a config. */
export function accountCredentialsOf(
  config: AppConfig,
  options: AccountsSourceOptions & { onSecrets?: (s: readonly string[]) => void; onAssume?: AssumeRoleObserver } = {},
): AccountCredentials {
  return createAccountCredentials({
    stsEndpoint: config.stsEndpoint,
    durationSeconds: config.stsDurationSeconds,
    sessionName: config.stsSessionName,
    connectTimeoutMs: config.connectTimeoutMs,
    readTimeoutMs: config.readTimeoutMs,
    retryAfterMs: ASSUME_RETRY_MS,
    ...(options.credentials ? { base: options.credentials } : {}),
    ...(options.onSecrets ? { onSecrets: options.onSecrets } : {}),
    ...(options.onAssume ? { onAssume: options.onAssume } : {}),
  });
}

const roleOf = (a: Account) => ({ accountId: a.id, roleArn: a.roleArn, ...(a.externalId === undefined ? {} : { externalId: a.externalId }) });

/** One account's part of a multi-account run. */
export interface AccountRun {
  account: string;
  name: string;
  /** `ok`: the run happened; `skipped`: the role could not be assumed (reason says why), nothing was called. */
  status: 'ok' | 'skipped';
  reason?: string;
  stsCalls: number;
  result?: OnceResult;
}

/** A `run --once` over many accounts: the per-account results and every summary row with its account. */
export interface AccountsOnceResult extends OnceResult {
  accounts: AccountRun[];
  summary: Array<PolicyRunSummary & { account: string }>;
}

export interface AccountsOnceOptions extends OnceOptions, AccountsSourceOptions {
  /** `--account`: only these account IDs or names. */
  accounts?: readonly string[];
}

function selected(all: readonly Account[], wanted: readonly string[] | undefined): Account[] {
  const { accounts, unknown } = restrictAccounts(all, wanted);
  if (unknown.length > 0) {
    throw new TagwardenError('CONFIG_INVALID', `--account names no governed account: ${unknown.join(', ')}`, {
      details: { unknown, valid: all.map((a) => `${a.id} (${a.name})`) },
    });
  }
  return accounts;
}

function skipReason(status: AssumeRoleStatus): string {
  return `role not assumed: ${status.lastError ?? status.state}`;
}

/**
 * `run --once` in every governed account (or those of `--account`), `accountConcurrency` at a time. Each
 * account runs with its own credentials, quota scope, queues and ledger; an account whose role cannot be
 * assumed is logged, reported as skipped and does not stop the others. `failed` when any account failed
 * or was skipped.
 */
export async function runOnceAccounts(config: AppConfig, list: AccountList, options: AccountsOnceOptions): Promise<AccountsOnceResult> {
  const logger: Logger = options.logger ?? createLogger({ level: config.logLevel, secrets: config.secrets, base: { service: 'tagwarden' } });
  const accounts = selected(await loadAccounts(config, list, options), options.accounts);
  // Session secrets never reach a log line: the cloud client scrubs every secret it was handed from the
  // errors it builds, and the credentials layer reports only STS codes.
  const credentials = accountCredentialsOf(config, options);
  const limit = pLimit(config.accountConcurrency);
  const runs = await Promise.all(accounts.map((account) => limit(async (): Promise<AccountRun> => {
    const role = roleOf(account);
    const status = await credentials.check(role);
    if (status.state !== 'ok') {
      logger.error('account skipped: its role cannot be assumed', { account: account.id, accountName: account.name, code: status.lastError });
      return { account: account.id, name: account.name, status: 'skipped', reason: skipReason(status), stsCalls: status.stsCalls };
    }
    const result = await runOnce(accountConfig(config, account), {
      ...options,
      logger: logger.child({ account: account.id }),
      credentialsProvider: credentials.providerFor(role),
      selectPolicy: (p) => policyGovernsAccount(p, account) && (options.selectPolicy?.(p) ?? true),
    });
    return { account: account.id, name: account.name, status: 'ok', stsCalls: credentials.status(account.id)?.stsCalls ?? 0, result };
  })));
  const done = runs.flatMap((r) => (r.result === undefined ? [] : [{ run: r, result: r.result }]));
  const policies = new Map(done.flatMap(({ result }) => result.policies.map((p) => [p.name, p] as const)));
  const stoppedAt = done.map(({ run, result }) => (result.stoppedAt ? `account ${run.account}: ${result.stoppedAt}` : undefined)).find(Boolean);
  return {
    runId: done.map(({ result }) => result.runId).join(','),
    policies: [...policies.values()],
    findings: done[0]?.result.findings ?? [],
    summary: done.flatMap(({ run, result }) => result.summary.map((s) => ({ ...s, account: run.account }))),
    failed: runs.some((r) => r.status === 'skipped' || r.result?.failed === true),
    timedOut: done.some(({ result }) => result.timedOut),
    halted: done.some(({ result }) => result.halted),
    ...(stoppedAt ? { stoppedAt } : {}),
    accounts: runs,
  };
}

/** A plan over many accounts: each row names its account; skipped accounts are listed with the reason. */
export interface AccountsPlanReport extends PlanReport {
  rows: Array<PlanRow & { account: string }>;
  accounts: Array<Omit<AccountRun, 'result'>>;
}

/** `plan` in every governed account (or those of `--account`), read-only, each paced within its own quotas. */
export async function planAccounts(
  config: AppConfig,
  list: AccountList,
  options: PlanOptions & AccountsSourceOptions & { accounts?: readonly string[] },
): Promise<AccountsPlanReport> {
  const accounts = selected(await loadAccounts(config, list, options), options.accounts);
  const credentials = accountCredentialsOf(config, options);
  const limit = pLimit(config.accountConcurrency);
  const parts = await Promise.all(accounts.map((account) => limit(async () => {
    const role = roleOf(account);
    const status = await credentials.check(role);
    if (status.state !== 'ok') {
      return { run: { account: account.id, name: account.name, status: 'skipped' as const, reason: skipReason(status), stsCalls: status.stsCalls } };
    }
    const report = await planPolicies(accountConfig(config, account), {
      ...options,
      credentialsProvider: credentials.providerFor(role),
      selectPolicy: (p) => policyGovernsAccount(p, account),
    });
    return { run: { account: account.id, name: account.name, status: 'ok' as const, stsCalls: credentials.status(account.id)?.stsCalls ?? 0 }, report };
  })));
  const rows = parts.flatMap((p) => (p.report?.rows ?? []).map((r) => ({ ...r, account: p.run.account })));
  const reports = parts.flatMap((p) => (p.report === undefined ? [] : [p.report]));
  const sum = (k: keyof PlanReport['totals']) => reports.reduce((n, r) => n + r.totals[k], 0);
  return {
    runId: reports.map((r) => r.runId).join(','),
    createdAt: reports[0]?.createdAt ?? new Date().toISOString(),
    findings: reports[0]?.findings ?? [],
    rows,
    changesPending: reports.some((r) => r.changesPending),
    halted: reports.some((r) => r.halted),
    totals: {
      tags: sum('tags'),
      connections: sum('connections'),
      calls: sum('calls'),
      policies: new Set(rows.map((r) => r.policy)).size,
      halted: new Set(rows.filter((r) => r.overCap).map((r) => r.policy)).size,
      dryRun: new Set(rows.filter((r) => r.mode === 'dryRun' && !r.overCap).map((r) => r.policy)).size,
    },
    accounts: parts.map((p) => p.run),
  };
}

/**
 * One job inspector over many accounts' inspectors: every job it shows carries its `account`; `find` and
 * `retry` look in each account in turn, `list` merges them newest first (`account` restricts it).
 */
export function mergedJobInspector(members: () => ReadonlyArray<{ account: string; jobs: JobInspector }>) {
  const tagged = (account: string) => (job: JobView): JobView & { account: string } => ({ ...job, account });
  return {
    async find(id: string) {
      for (const m of members()) {
        const job = await m.jobs.find(id);
        if (job) return tagged(m.account)(job);
      }
      return null;
    },
    async list(state: ListableState, opts: { limit?: number; policy?: string; region?: string; account?: string } = {}) {
      const limit = opts.limit ?? 50;
      const parts = await Promise.all(
        members()
          .filter((m) => opts.account === undefined || m.account === opts.account)
          .map(async (m) => (await m.jobs.list(state, opts)).map(tagged(m.account))),
      );
      return parts.flat().sort((a, b) => (a.timestamps.created < b.timestamps.created ? 1 : a.timestamps.created > b.timestamps.created ? -1 : 0)).slice(0, limit);
    },
    async retry(id: string) {
      for (const m of members()) {
        if (await m.jobs.find(id)) return tagged(m.account)(await m.jobs.retry(id));
      }
      throw new TagwardenError('NOT_FOUND', 'no job with this ID in any queue', { details: { id } });
    },
  };
}

/** Which accounts each policy governs (validate --account). */
export function governedAccounts(policies: OnceResult['policies'], accounts: readonly Account[]): Array<{ policy: string; accounts: string[] }> {
  return policies.map((p) => ({ policy: p.name, accounts: accountsOfPolicy(p, accounts).map((a) => a.id) }));
}
