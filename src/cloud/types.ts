// Owns the CloudApi contract that scans and workers call, and the failure classification types.
// Must not know about queues, Redis or metrics: those come in through CloudHooks.
import type { ApiName, Resource } from '../model.js';

/** Every failure is classified once into one of these kinds (reference §1.7-1.8). */
export type FailureKind = 'throttled' | 'transient' | 'permanent' | 'auth' | 'not-found';

export interface CloudFailure {
  readonly kind: FailureKind;
  /** The API error code (`Throttling.User`), or a synthetic one: `NetworkError`, `Timeout`, `BadResponse`. */
  readonly code: string;
  readonly httpStatus?: number;
  readonly requestId?: string;
  /** Safe to log: never contains credentials or signed headers. */
  readonly message: string;
  /** Milliseconds the server asked us to wait (Retry-After), when it said. */
  readonly retryAfterMs?: number;
}

export interface ListPeerConnectionsFilter {
  readonly instanceId?: string;
  /** At most 2: matches either side of the connection. */
  readonly vpcIds?: readonly string[];
  readonly name?: string;
  readonly resourceGroupId?: string;
  /**
   * Only connections carrying all of these (at most 20); value undefined matches any value. The first 10 are
   * sent (the metadata's limit), the rest are applied to each page, so pages may hold fewer items.
   */
  readonly tags?: readonly { key: string; value?: string }[];
  /** Page size, 1-100 (default 100). */
  readonly maxResults?: number;
}

export interface Page<T> {
  readonly items: readonly T[];
  readonly requestId: string;
  /** Token to resume after this page; undefined on the last page. */
  readonly nextToken?: string;
  /** ListVpcPeerConnections: the listing's TotalCount as the service answered it (a bound, not a promise). */
  readonly totalCount?: number;
}

export interface TagRow {
  readonly resourceId: string;
  readonly tagKey: string;
  readonly tagValue: string;
}

export interface TagResourcesSelector {
  /** 1-20 IDs, or omit and give tags. */
  readonly resourceIds?: readonly string[];
  /** Resources carrying all these keys (any value). */
  readonly tagKeys?: readonly string[];
  /** Page size 1-50 (default 50). */
  readonly maxResults?: number;
  /** Which tags (SDK 2.0.x `Category`): All, Custom or System; not sent when absent (the service's default is All). */
  readonly category?: 'All' | 'Custom' | 'System';
}

export interface UntagRequest {
  readonly region: string;
  readonly resourceIds: readonly string[];
  /** Keys to remove; ignored when `all` is true. */
  readonly tagKeys: readonly string[];
  readonly all: boolean;
  readonly clientToken: string;
}

export interface TagRequest {
  readonly region: string;
  readonly resourceIds: readonly string[];
  readonly tags: Readonly<Record<string, string>>;
  readonly clientToken?: string;
}

/** The VpcPeer operations tagwarden needs. Every method throws CloudError on failure. */
export interface CloudApi {
  listPeerConnections(region: string, filter?: ListPeerConnectionsFilter, startToken?: string): AsyncIterable<Page<Resource>>;
  listTagResources(region: string, selector: TagResourcesSelector, startToken?: string): AsyncIterable<Page<TagRow>>;
  /** null when the connection does not exist (ResourceNotFound.InstanceId). */
  getPeerConnection(region: string, id: string): Promise<Resource | null>;
  untagResources(req: UntagRequest): Promise<{ requestId: string }>;
  tagResources(req: TagRequest): Promise<{ requestId: string }>;
}

/**
 * Injected around every HTTP call: `before` waits for quota (rate limiter), `after` records the outcome
 * (metrics). Both are optional so the client works alone in tests and the CLI.
 */
export interface CloudHooks {
  /** Awaited before each request: the region's rate. */
  before?(api: ApiName, region: string): Promise<void>;
  /**
   * Wraps the HTTP request itself, once `before` has resolved: a process-wide concurrency slot is taken only when
   * the region's rate allows the call, so calls waiting for a throttled region never hold every slot.
   */
  slot?<T>(send: () => Promise<T>): Promise<T>;
  after?(api: ApiName, region: string, outcome: { code: string; seconds: number; failure?: CloudFailure }): void;
  /**
   * Awaited with the access key ID a request is about to be signed with (ActionTrail records it as the caller's
   * `userIdentity.accessKeyId`, so events about our own calls can be recognised). Its failure never fails the call.
   */
  signedWith?(accessKeyId: string): Promise<void> | void;
}
