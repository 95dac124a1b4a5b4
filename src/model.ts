// Owns the domain types shared by every layer: resources, removals, batches, API names.
// Must not import anything: this file is the bottom of the dependency graph.

/** The VpcPeer actions tagwarden calls; each has its own quota per (account, region). */
export const API_NAMES = [
  'UnTagResources',
  'TagResources',
  'ListTagResources',
  'ListVpcPeerConnections',
  'GetVpcPeerConnectionAttribute',
] as const;
export type ApiName = (typeof API_NAMES)[number];

/**
 * GetVpcPeerConnectionAttribute takes no RegionId (it is central and answers for an ID of any region), so
 * its quota cannot be per region: both the client's rate limiter and the emulator count it in this one
 * bucket per account, whatever region the caller works in (src/emulator/API-FACTS.md, "Quotas").
 */
export const CENTRAL_QUOTA_REGION = 'central';

/** The APIs without a RegionId parameter. */
export const REGIONLESS_APIS: readonly ApiName[] = ['GetVpcPeerConnectionAttribute'];

/** The region whose quota bucket a call of `api` made for `region` spends. */
export function quotaRegion(api: ApiName, region: string): string {
  return REGIONLESS_APIS.includes(api) ? CENTRAL_QUOTA_REGION : region;
}

/** Documented quotas, calls per 60 s per (account, region, API) (reference §2). */
export const DOCUMENTED_QUOTAS: Readonly<Record<ApiName, number>> = Object.freeze({
  UnTagResources: 1000,
  TagResources: 1000,
  ListTagResources: 3000,
  ListVpcPeerConnections: 360,
  GetVpcPeerConnectionAttribute: 360,
});

/**
 * The regions of VpcPeer 2022-01-01, all served by vpcpeer.aliyuncs.com: exactly the 28 `regionId`s of the
 * `endpoints` array of the API metadata (src/emulator/API-FACTS.md, "Regions"). A region missing here can
 * still be governed: any well-formed region ID is accepted, with a warning (see `regionIdProblem`).
 */
export const KNOWN_REGIONS = [
  'cn-qingdao', 'cn-beijing', 'cn-zhangjiakou', 'cn-huhehaote', 'cn-wulanchabu', 'cn-hangzhou',
  'cn-shanghai', 'cn-nanjing', 'cn-shenzhen', 'cn-heyuan', 'cn-guangzhou', 'cn-chengdu', 'cn-hongkong',
  'ap-northeast-1', 'ap-northeast-2', 'ap-southeast-1', 'ap-southeast-2', 'ap-southeast-3', 'ap-southeast-5',
  'ap-southeast-6', 'ap-southeast-7', 'ap-south-1', 'us-east-1', 'us-west-1', 'eu-west-1', 'eu-central-1',
  'me-east-1', 'me-central-1',
] as const;

/** The shape of an Alibaba Cloud region ID: `cn-hangzhou`, `ap-southeast-1`, `cn-shanghai-finance-1`. */
export const REGION_ID_PATTERN = /^[a-z]{2}-[a-z0-9]+(?:-[a-z0-9]+){0,4}$/;
/** Longest accepted region ID. */
export const MAX_REGION_ID_LENGTH = 40;

/** Whether VpcPeer's endpoint metadata lists the region. */
export function isKnownRegion(region: string): boolean {
  return (KNOWN_REGIONS as readonly string[]).includes(region);
}

/** What is wrong with a region ID's shape, or undefined when it is well formed (known or not). */
export function regionIdProblem(region: string): string | undefined {
  if (region.length === 0) return 'must not be empty';
  if (region.length > MAX_REGION_ID_LENGTH) return `is ${region.length} characters long; at most ${MAX_REGION_ID_LENGTH} are allowed`;
  if (!REGION_ID_PATTERN.test(region)) return 'is not a region ID (lowercase letters and digits in dash-separated parts, such as cn-hangzhou or ap-south-1)';
  return undefined;
}

/** Connection statuses on the way out (documented Status values): such a connection cannot be governed. */
export const LEAVING_STATUSES: ReadonlySet<string> = new Set(['Deleting', 'Deleted']);

/** Limits of one UnTagResources call (reference §1.2). */
export const MAX_IDS_PER_CALL = 20;
export const MAX_KEYS_PER_CALL = 20;

/** A VPC peering connection as tagwarden sees it: identity, tags and the selectable attributes. */
export interface Resource {
  readonly id: string;
  readonly region: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly attributes: ResourceAttributes;
}

export interface ResourceAttributes {
  readonly name?: string;
  readonly status?: string;
  readonly vpcId?: string;
  readonly acceptingVpcId?: string;
  readonly acceptingRegionId?: string;
  readonly resourceGroupId?: string;
  readonly description?: string;
  /** LinkType of List/Get answers (the SDK's example is `Gold`). */
  readonly linkType?: string;
  /** ManagedService of List/Get answers: set when a service (e.g. `SWAS`) manages the connection. */
  readonly managedService?: string;
}

/** What one policy wants removed from one resource: some keys, or every tag. */
export type Removal =
  | { readonly resourceId: string; readonly all: false; readonly keys: readonly string[] }
  | { readonly resourceId: string; readonly all: true; readonly keys: readonly string[] };
// With all=true, `keys` lists the tags the resource carried when it was read (for counting).

/** One UnTagResources call's worth of work. `id` is both the BullMQ jobId and the ClientToken. */
export interface Batch {
  readonly id: string;
  readonly policy: string;
  readonly region: string;
  /** The scan run (or API request) that produced the batch; part of the identity. */
  readonly runId: string;
  readonly resourceIds: readonly string[];
  /** Sorted keys to remove; empty when `all` is true. */
  readonly tagKeys: readonly string[];
  readonly all: boolean;
  /**
   * For batches planned from a scan: the keys each resource carried, i.e. what success removes from it.
   * A union-packed key batch names keys some of its resources lack (ones the policy would remove were they
   * there); `carried` says which each resource has. Exact-set key batches may omit it: every resource
   * carried every key of its batch by construction.
   */
  readonly carried?: Readonly<Record<string, readonly string[]>>;
}

/** System tags (reference §7.1): never removed by tagwarden, whatever a policy or a request says. */
export function isSystemTagKey(key: string): boolean {
  return key.startsWith('acs:') || key.startsWith('aliyun');
}

/** The longest tag key (and value) the API accepts, in Unicode code points. */
export const MAX_TAG_TEXT_LENGTH = 128;

/**
 * The length of `text` as the API counts it: Unicode code points, so an emoji is one character, not the two
 * UTF-16 units of `text.length`. The one way tag keys and values are measured everywhere (policy validation,
 * matching and planning, job schemas, the worker, the emulator).
 */
export function codePointLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/**
 * The VpcPeer tag-key rules (reference §1.2.1, §7.1): 1-128 characters (code points), no `aliyun`/`acs:`
 * prefix, no `http://` or `https://`. Returns what is wrong, or undefined when the key is valid.
 */
export function tagKeyProblem(key: string): string | undefined {
  if (key.length === 0) return 'must not be empty';
  const length = codePointLength(key);
  if (length > MAX_TAG_TEXT_LENGTH) return `is ${length} characters long; at most ${MAX_TAG_TEXT_LENGTH} are allowed`;
  if (isSystemTagKey(key)) return 'starts with "acs:" or "aliyun", which are reserved for system tags';
  if (/https?:\/\//.test(key)) return 'must not contain "http://" or "https://"';
  return undefined;
}
