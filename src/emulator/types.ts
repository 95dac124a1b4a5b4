// Public types of the VpcPeer emulator: options, fault config, state document, call log and stats.
import type { ApiName } from '../model.js';
import type { WebhookConfig } from './webhook.js';

/** An access key the emulator accepts. */
export interface EmulatorCredential {
  readonly accessKeyId: string;
  readonly accessKeySecret: string;
  /**
   * Set for STS credentials: every request signed with this key must carry this token (V3: the signed
   * `x-acs-security-token` header; V2: the `SecurityToken` parameter), else `MissingSecurityToken` or
   * `InvalidSecurityToken.MismatchWithAccessKey`.
   */
  readonly securityToken?: string;
  /** Epoch ms after which the credential answers `InvalidSecurityToken.Expired` (STS sessions). */
  readonly expiresAt?: number;
}

/** Fault injection, drawn once per signed API call after the signature check. Probabilities 0..1. */
export interface FaultConfig {
  /** HTTP 503 `ServiceUnavailable`, change not applied. */
  serviceUnavailable?: number;
  /** HTTP 500 `InternalError`, change not applied. */
  internalError?: number;
  /** Destroy the socket without a response; change NOT applied. */
  reset?: number;
  /** Apply the change (and remember the ClientToken result), then destroy the socket. */
  applyThenDrop?: number;
  /** HTTP 502 with an HTML body (what a broken load balancer answers), change not applied. */
  html502?: number;
  /** `Throttling.User` regardless of the quota, change not applied (status `throttleStatus`, header `retryAfterMs`). */
  throttle?: number;
  /** HTTP 200 with `Success: false` (TagResources and UnTagResources only; other actions draw no fault), change not applied. */
  unsuccessful?: number;
  /** HTTP 400 `Forbidden.NoPermission` (RAM denies the action; 400, not 403, per the error center), change not applied. */
  noPermission?: number;
  /** HTTP 400 `Conflict.Operation` (another change runs on the resource; retry later), change not applied. */
  conflict?: number;
  /** HTTP 400 `InvalidTagKey`, change not applied. */
  invalidTagKey?: number;
  /** HTTP status of throttling answers, injected or from the quota: 400 (default, documented) or 429. */
  throttleStatus?: 400 | 429;
  /** When set, throttling answers carry `x-acs-retry-after: <ms>` (the SDK reads it as milliseconds). */
  retryAfterMs?: number;
  /** Added before responding (also to failed calls). */
  latencyMs?: number;
  /** Uniform extra latency in [0, jitterMs). */
  jitterMs?: number;
  /** Limit faults and latency to these actions (default all). */
  actions?: ApiName[];
  /** Limit faults and latency to these regions (default all). */
  regions?: string[];
  /** Seed of the fault draws: the same call sequence draws the same faults. */
  seed?: number;
}

/** Deterministic estate generation. */
export interface GenerateOptions {
  count: number;
  seed: number;
  /** Default cn-hangzhou, cn-shanghai, cn-beijing; resource i lives in regions[i % length]. */
  regions?: string[];
}

/** One VPC peering connection as the admin API reads and writes it. */
export interface EmulatorResource {
  id: string;
  region: string;
  tags: Record<string, string>;
  name?: string;
  description?: string;
  /** Creating | Accepting | Updating | Rejected | Expired | Activated | Deleting | Deleted. */
  status?: string;
  /** Normal | FinancialLocked. */
  bizStatus?: string;
  vpcId?: string;
  acceptingVpcId?: string;
  acceptingRegionId?: string;
  acceptingOwnerUid?: number;
  resourceGroupId?: string;
  ownerId?: number;
  /** Mbps; -1 means unlimited. */
  bandwidth?: number;
  /** ISO-8601 UTC, `yyyy-MM-ddTHH:mm:ssZ`. */
  gmtCreate?: string;
  gmtModified?: string;
  /** Set only while Accepting or Expired. */
  gmtExpired?: string | null;
  /** Link type of the connection (the SDK's example is `Gold`); default `Gold`. */
  linkType?: string;
  /** The service managing the connection (the SDK's example is `SWAS`); default '' (not managed). */
  managedService?: string;
}

/**
 * How the API treats connections in status `Deleting` or `Deleted` (what the real service answers is
 * unconfirmed, so every plausible answer can be chosen). Defaults: found, listed, ok.
 */
export interface DeletedBehaviour {
  /** GetVpcPeerConnectionAttribute: `found` returns it with its status; `not-found` answers ResourceNotFound.InstanceId. */
  get?: 'found' | 'not-found';
  /** ListVpcPeerConnections: `listed` includes it; `hidden` leaves it out (TotalCount too). */
  list?: 'listed' | 'hidden';
  /**
   * Tag APIs (UnTagResources, TagResources, ListTagResources): `ok` works as for any connection; `not-found`
   * treats it as unknown (InvalidInstanceIds.NotFound, absent from listings); `incorrect-status` answers
   * IncorrectStatus.VpcPeer for calls naming it.
   */
  tags?: 'ok' | 'not-found' | 'incorrect-status';
}

/** Limits where the metadata and the descriptions disagree; the metadata's value is the default. */
export interface EmulatorLimits {
  /** Most `Tags.N` pairs of ListVpcPeerConnections: metadata maxItems 10 (default), descriptions 20. */
  listConnectionsTags?: 10 | 20;
}

/**
 * Hostile paging of ListVpcPeerConnections (a listing that shifts while it is read repeats rows). Default none.
 * `in-page`: every non-empty page lists its first connection again at its end (one row over MaxResults);
 * `across-pages`: every page after the first starts with the last connection of the page before it (the
 * NextToken points one row back; pages of one row are not repeated, so a listing always advances).
 */
export interface PagingBehaviour {
  repeat?: 'none' | 'in-page' | 'across-pages';
}

/** `GET/PUT /_emulator/behaviour` body; fields given replace the current ones. */
export interface EmulatorBehaviour {
  deleted?: DeletedBehaviour;
  limits?: EmulatorLimits;
  paging?: PagingBehaviour;
}

/** The shape of `GET/PUT /_emulator/state` and of `EmulatorOptions.fixture`. */
export interface EmulatorStateDoc {
  resources: EmulatorResource[];
}

/**
 * A member account of the emulated Resource Directory: its own estate, quotas and faults, reached only
 * with keys from STS AssumeRole on `acs:ram::<id>:role/<roleName>`.
 */
export interface EmulatorAccount {
  /** The account ID (ParentUid): 1-20 digits. */
  id: string;
  /** ListAccounts DisplayName; default `member-<id>`. */
  name?: string;
  /** The role AssumeRole may take; default ResourceDirectoryAccountAccessRole. Compared case-insensitively. */
  roleName?: string;
  /** When set, the role's trust policy requires this ExternalId. */
  externalId?: string;
  /** The trust policy refuses the caller: AssumeRole answers NoPermission. */
  denied?: boolean;
  /** ListAccounts Status; default CreateSuccess. */
  status?: string;
  /** Resource Directory tags of the account (ListAccounts IncludeTags=true). */
  tags?: Record<string, string>;
  fixture?: EmulatorStateDoc;
  generate?: GenerateOptions;
  quotas?: Partial<Record<ApiName, number>>;
  regionQuotas?: Record<string, Partial<Record<ApiName, number>>>;
  faults?: FaultConfig;
}

/** Options of `startEmulator`. Every field is optional. */
export interface EmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (default) picks an ephemeral port. */
  port?: number;
  /** Default `[{accessKeyId: 'tagwarden-test', accessKeySecret: 'tagwarden-test-secret'}]`. */
  credentials?: EmulatorCredential[];
  /** Generate a deterministic estate (after `fixture`, if both are given). */
  generate?: GenerateOptions;
  /** Initial state, same shape as `GET /_emulator/state`. */
  fixture?: EmulatorStateDoc;
  /** Calls per window per (region, action); defaults to DOCUMENTED_QUOTAS. */
  quotas?: Partial<Record<ApiName, number>>;
  /** Per-region overrides of `quotas`. */
  regionQuotas?: Record<string, Partial<Record<ApiName, number>>>;
  /** Default 60000; fixed windows aligned to the epoch. */
  quotaWindowMs?: number;
  /** How long successful ClientToken results are remembered; default 24 h. */
  clientTokenTtlMs?: number;
  /** How long signature nonces are remembered; default 15 min. */
  nonceTtlMs?: number;
  faults?: FaultConfig;
  /** What the API answers for connections in status Deleting or Deleted, and disputed limits. */
  behaviour?: EmulatorBehaviour;
  /** Cap on `/_emulator/calls` entries, oldest dropped first; default 200000. */
  maxCallLog?: number;
  /** Clock (epoch ms), for tests. */
  now?: () => number;
  /** Deliver an ActionTrail CloudEvent for every successful TagResources call (see webhook.ts). */
  webhook?: WebhookConfig;
  /** Member accounts; the emulator's own keys then act as the management account (its estate is the top-level one). */
  accounts?: EmulatorAccount[];
  /** Lifetime of AssumeRole credentials, overriding DurationSeconds (tests of refresh before expiry). */
  stsSessionSeconds?: number;
}

/** A started emulator. `close()` is idempotent. */
export interface RunningEmulator {
  /** `http://host:port`, no trailing slash. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** One API call as the emulator saw it (`GET /_emulator/calls`). */
export interface CallRecord {
  /** Increases by one per API call, from 1. */
  seq: number;
  /** Epoch ms when the call arrived. */
  at: number;
  /** The action asked for (may be unknown or empty when the request was malformed). */
  action: string;
  /** RegionId of the call, or '' when it had none. */
  region: string;
  /** Normalised business parameters (never signature parameters). */
  params: Record<string, unknown>;
  clientToken: string | null;
  /** HTTP status sent; 0 when the socket was destroyed without a response. */
  status: number;
  /** `OK` on success, else the error code. */
  code: string;
  /** Whether the call changed (or, for reads, served) state. False when replayed or failed. */
  applied: boolean;
  /** Tags actually removed by this call (0 when replayed or failed). */
  removed: number;
  /** Tags actually added or overwritten by this call. */
  added: number;
  /** True when a ClientToken replay answered the call. */
  replayed: boolean;
  /** The injected fault, if any. */
  fault: FaultKind | null;
  requestId: string;
  accessKeyId: string | null;
  /** The member account the call acted in (STS key or AssumeRole target); absent for the emulator's own account. */
  account?: string;
  /** 'v2' | 'v3' | null (unsigned or unparseable). */
  signature: 'v2' | 'v3' | null;
}

/** The fault kinds `FaultConfig` can inject. */
export type FaultKind =
  | 'serviceUnavailable' | 'internalError' | 'reset' | 'applyThenDrop' | 'html502' | 'throttle'
  | 'unsuccessful' | 'noPermission' | 'conflict' | 'invalidTagKey';

/** `GET /_emulator/calls` body. */
export interface CallLogPage {
  calls: CallRecord[];
  /** How many records were dropped because of `maxCallLog`. */
  dropped: number;
}

/** Counters of one scope (all, one action, one region). */
export interface CallCounters {
  total: number;
  /** By code: `OK`, `Throttling.User`, ... */
  codes: Record<string, number>;
  applied: number;
  replayed: number;
  tagsRemoved: number;
  tagsAdded: number;
}

/** `GET /_emulator/stats` body. */
export interface EmulatorStats extends CallCounters {
  byAction: Record<string, CallCounters>;
  byRegion: Record<string, CallCounters & { byAction: Record<string, CallCounters> }>;
  /** Tags removed per region. */
  tagsRemovedByRegion: Record<string, number>;
  /** Injected faults by kind. */
  faults: Record<string, number>;
  /** Live resources per region. */
  resources: Record<string, number>;
}

/** `PUT /_emulator/quotas` body; fields given replace the current ones and reset the counters. */
export interface QuotaUpdate {
  quotas?: Partial<Record<ApiName, number>>;
  regionQuotas?: Record<string, Partial<Record<ApiName, number>>>;
  windowMs?: number;
}

/** `GET /_emulator/quotas` body. */
export interface QuotaState {
  quotas: Record<ApiName, number>;
  regionQuotas: Record<string, Partial<Record<ApiName, number>>>;
  windowMs: number;
  /** Calls counted in the current window, by `region|action`. */
  current: Record<string, number>;
}
