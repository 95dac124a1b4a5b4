// Per-account credentials: one `@alicloud/credentials` RAMRoleARNCredentialsProvider per member account,
// chained from the deployment's own credentials, single-flight, with a cool-down after a refused role.
// Must not log or return secrets: only outcomes, codes and expiry times leave this file.
import * as credentialsPkg from '@alicloud/credentials';
import { TagwardenError } from '../errors.js';

type Provider = credentialsPkg.CredentialsProvider;
type Creds = Awaited<ReturnType<Provider['getCredentials']>>;

function classOf<T>(mod: T | { default: T }): T {
  return (typeof mod === 'function' ? mod : (mod as { default: T }).default);
}
const RAMRoleARNCredentialsProvider = classOf(credentialsPkg.RAMRoleARNCredentialsProvider);
const StaticAKCredentialsProvider = classOf(credentialsPkg.StaticAKCredentialsProvider);
const StaticSTSCredentialsProvider = classOf(credentialsPkg.StaticSTSCredentialsProvider);
const DefaultCredentialsProvider = classOf(credentialsPkg.DefaultCredentialsProvider);

/** The role to assume in one account. */
export interface AccountRole {
  readonly accountId: string;
  readonly roleArn: string;
  readonly externalId?: string;
}

/** What the credentials layer reports about one account. */
export interface AssumeRoleStatus {
  readonly accountId: string;
  /** `ok` once a session was obtained, `denied` when STS refused the role, `error` on other failures, `pending` before the first try. */
  readonly state: 'pending' | 'ok' | 'denied' | 'error';
  /** STS error code or a short reason of the last failure (never a secret). */
  readonly lastError?: string;
  /** Epoch ms of the current session's expiry, when known. */
  readonly expiresAt?: number;
  /** AssumeRole calls made for this account by this process. */
  readonly stsCalls: number;
}

/** Observes every AssumeRole call (for metrics and logs). */
export type AssumeRoleObserver = (event: { accountId: string; outcome: 'ok' | 'denied' | 'error'; code?: string; seconds: number }) => void;

export interface AccountCredentialsOptions {
  /** STS endpoint with scheme: `https://sts.aliyuncs.com` (default) or a regional/VPC one; `http://` only to loopback (the emulator). */
  readonly stsEndpoint: string;
  /** Session lifetime asked for: 900-43200 s (the role's MaxSessionDuration caps it); default 3600. */
  readonly durationSeconds: number;
  /** RoleSessionName: shows in the member's ActionTrail. */
  readonly sessionName: string;
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;
  /** The deployment's own keys; absent: the default chain (env, RRSA OIDC, profile, ECS RAM role, URI). */
  readonly base?: { accessKeyId: string; accessKeySecret: string; securityToken?: string };
  /** After a failed AssumeRole, calls fail fast for this long (doubling per failure up to 16x) so STS is not hammered. */
  readonly retryAfterMs: number;
  readonly onAssume?: AssumeRoleObserver;
  /** Receives every secret value seen (session secrets and tokens), for redaction. */
  readonly onSecrets?: (secrets: readonly string[]) => void;
  /** Clock (epoch ms), for tests. */
  readonly now?: () => number;
}

/** Raised when an account's role cannot be assumed; classified as `auth` by the cloud table. */
export class AssumeRoleError extends TagwardenError {
  override readonly name = 'AssumeRoleError';
  constructor(
    readonly accountId: string,
    readonly stsCode: string,
    readonly denied: boolean,
  ) {
    super('CLOUD_AUTH', `cannot assume the role of account ${accountId}: ${stsCode}`, { details: { accountId, stsCode } });
  }
}

const DENIED_CODES = new Set(['NoPermission', 'EntityNotExist.Role', 'InvalidParameter.RoleArn', 'InvalidParameter.ExternalId', 'AccessDenied']);

/** The STS error code inside a provider error message (`refresh session token failed: {json}`), or a short reason. */
function stsCodeOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const json = message.indexOf('{');
  if (json >= 0) {
    try {
      const body = JSON.parse(message.slice(json)) as { Code?: unknown };
      if (typeof body.Code === 'string' && /^[A-Za-z0-9.]{1,100}$/.test(body.Code)) return body.Code;
    } catch {
      // not JSON: fall through
    }
  }
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^[A-Z0-9_]{2,40}$/.test(code)) return code; // ECONNREFUSED, ETIMEDOUT...
  return message.includes('secret is invalid') ? 'SignatureDoesNotMatch' : 'AssumeRoleFailed';
}

function parseEndpoint(endpoint: string): { host: string; http: boolean } {
  let url: URL;
  try {
    url = new URL(endpoint.includes('://') ? endpoint : `https://${endpoint}`);
  } catch {
    throw new TagwardenError('CONFIG_INVALID', 'STS endpoint is not a valid URL', { details: { endpoint } });
  }
  if (url.protocol === 'http:') {
    // Temporary keys never cross a network in clear text: plain http is for a local emulator only.
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
      throw new TagwardenError('CONFIG_INVALID', 'STS endpoint over http must be a loopback address', { details: { endpoint } });
    }
    return { host: url.host, http: true };
  }
  if (url.protocol !== 'https:') throw new TagwardenError('CONFIG_INVALID', 'STS endpoint scheme must be https', { details: { endpoint } });
  return { host: url.host, http: false };
}

interface Entry {
  role: AccountRole;
  provider: Provider;
  state: AssumeRoleStatus['state'];
  lastError?: string;
  expiresAt?: number;
  stsCalls: number;
  failures: number;
  coolUntil: number;
  lastFailure?: AssumeRoleError;
  inflight?: Promise<Creds>;
}

/** Per-account credentials providers with their status. */
export interface AccountCredentials {
  /** The provider of one account (built once per account and role; sessions are reused until near expiry). */
  providerFor(role: AccountRole): Provider;
  /** Assumes the role now if no valid session is held; resolves to the account's status (never rejects). */
  check(role: AccountRole): Promise<AssumeRoleStatus>;
  status(accountId: string): AssumeRoleStatus | undefined;
  statuses(): AssumeRoleStatus[];
  /** Forgets accounts not in `keep` (left the directory). */
  retain(keep: ReadonlySet<string>): void;
}

/**
 * Builds the per-account layer. Each provider is the official RAMRoleARNCredentialsProvider with the
 * member role ARN set explicitly (it would otherwise fall back to ALIBABA_CLOUD_ROLE_ARN, the RRSA role),
 * ExternalId when given, and the deployment's own credentials as previous provider. The library keeps
 * the session until 15 minutes before it expires; this layer adds single-flight refreshes (concurrent
 * callers share one AssumeRole) and a cool-down after a failure.
 */
export function createAccountCredentials(options: AccountCredentialsOptions): AccountCredentials {
  const now = options.now ?? Date.now;
  const sts = parseEndpoint(options.stsEndpoint);
  if (!Number.isInteger(options.durationSeconds) || options.durationSeconds < 900 || options.durationSeconds > 43_200) {
    throw new TagwardenError('CONFIG_INVALID', 'STS session duration must be 900-43200 seconds', { details: { durationSeconds: options.durationSeconds } });
  }
  const base: Provider = options.base === undefined
    ? DefaultCredentialsProvider.builder().build()
    : options.base.securityToken
      ? StaticSTSCredentialsProvider.builder().withAccessKeyId(options.base.accessKeyId).withAccessKeySecret(options.base.accessKeySecret).withSecurityToken(options.base.securityToken).build()
      : StaticAKCredentialsProvider.builder().withAccessKeyId(options.base.accessKeyId).withAccessKeySecret(options.base.accessKeySecret).build();
  const entries = new Map<string, Entry>();

  const build = (role: AccountRole): Entry => {
    if (role.roleArn === '') throw new TagwardenError('CONFIG_INVALID', 'an account needs a role ARN', { details: { accountId: role.accountId } });
    let builder = RAMRoleARNCredentialsProvider.builder()
      .withCredentialsProvider(base)
      .withRoleArn(role.roleArn)
      .withRoleSessionName(options.sessionName)
      .withDurationSeconds(options.durationSeconds)
      .withStsEndpoint(sts.host)
      .withConnectTimeout(options.connectTimeoutMs)
      .withReadTimeout(options.readTimeoutMs);
    if (role.externalId !== undefined) builder = builder.withExternalId(role.externalId);
    const provider = builder.build();
    const entry: Entry = { role, provider, state: 'pending', stsCalls: 0, failures: 0, coolUntil: 0 };
    // The library's one HTTP hook: count each AssumeRole, read the expiry, and (emulator only) send it over http.
    const hooked = provider as unknown as { doRequest: (req: { protocol: string }) => Promise<{ statusCode: number; body: Buffer }> };
    const send = hooked.doRequest;
    hooked.doRequest = async (req) => {
      if (sts.http) req.protocol = 'http';
      entry.stsCalls++;
      const res = await send(req);
      if (res.statusCode === 200) {
        try {
          const body = JSON.parse(res.body.toString('utf8')) as { Credentials?: { Expiration?: unknown; AccessKeySecret?: unknown; SecurityToken?: unknown } };
          const c = body.Credentials;
          if (typeof c?.Expiration === 'string') entry.expiresAt = Date.parse(c.Expiration);
          const secrets = [c?.AccessKeySecret, c?.SecurityToken].filter((v): v is string => typeof v === 'string' && v.length > 0);
          if (secrets.length > 0) options.onSecrets?.(secrets);
        } catch {
          // the library reports the unparseable body itself
        }
      }
      return res;
    };
    return entry;
  };

  const entryOf = (role: AccountRole): Entry => {
    const e = entries.get(role.accountId);
    if (e !== undefined && e.role.roleArn === role.roleArn && e.role.externalId === role.externalId) return e;
    const fresh = build(role);
    entries.set(role.accountId, fresh);
    return fresh;
  };

  const fetchCreds = (entry: Entry): Promise<Creds> => {
    if (entry.inflight !== undefined) return entry.inflight;
    if (entry.lastFailure !== undefined && now() < entry.coolUntil) return Promise.reject(entry.lastFailure);
    const calls = entry.stsCalls;
    const started = now();
    const run = entry.provider.getCredentials().then(
      (creds) => {
        entry.state = 'ok';
        entry.failures = 0;
        delete entry.lastError;
        delete entry.lastFailure;
        if (entry.stsCalls > calls) options.onAssume?.({ accountId: entry.role.accountId, outcome: 'ok', seconds: (now() - started) / 1000 });
        return creds;
      },
      (err: unknown) => {
        const code = stsCodeOf(err);
        const denied = DENIED_CODES.has(code);
        entry.state = denied ? 'denied' : 'error';
        entry.lastError = code;
        entry.failures++;
        entry.coolUntil = now() + options.retryAfterMs * Math.min(16, 2 ** (entry.failures - 1));
        entry.lastFailure = new AssumeRoleError(entry.role.accountId, code, denied);
        options.onAssume?.({ accountId: entry.role.accountId, outcome: denied ? 'denied' : 'error', code, seconds: (now() - started) / 1000 });
        throw entry.lastFailure;
      },
    ).finally(() => {
      delete entry.inflight;
    });
    entry.inflight = run;
    return run;
  };

  const statusOf = (e: Entry): AssumeRoleStatus => ({
    accountId: e.role.accountId,
    state: e.state,
    stsCalls: e.stsCalls,
    ...(e.lastError === undefined ? {} : { lastError: e.lastError }),
    ...(e.expiresAt === undefined ? {} : { expiresAt: e.expiresAt }),
  });

  return {
    providerFor(role) {
      const entry = entryOf(role);
      return {
        getCredentials: () => fetchCreds(entry),
        getProviderName: () => entry.provider.getProviderName(),
      };
    },
    async check(role) {
      const entry = entryOf(role);
      try {
        await fetchCreds(entry);
      } catch {
        // recorded in the entry
      }
      return statusOf(entry);
    },
    status(accountId) {
      const e = entries.get(accountId);
      return e === undefined ? undefined : statusOf(e);
    },
    statuses: () => [...entries.values()].map(statusOf),
    retain(keep) {
      for (const id of [...entries.keys()]) if (!keep.has(id)) entries.delete(id);
    },
  };
}
