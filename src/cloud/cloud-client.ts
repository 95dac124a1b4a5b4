// The CloudApi over the official SDK: request shapes per reference §1.1-1.6, hooks around each call,
// every failure classified once and thrown as CloudError.
import { TagwardenError } from '../errors.js';
import { MAX_IDS_PER_CALL, MAX_KEYS_PER_CALL, type ApiName, type Resource, quotaRegion } from '../model.js';
import { CloudError, classifyError } from './classify-error.js';
import { redact } from './redact.js';
import { asBag, listOf, toResource, toTagRow } from './response-mapping.js';
import { createSdkCaller, flattenQuery, type SdkCredentialsProvider, type SdkRequest } from './sdk.js';
import type {
  CloudApi,
  CloudFailure,
  CloudHooks,
  ListPeerConnectionsFilter,
  Page,
  TagRequest,
  TagResourcesSelector,
  TagRow,
  UntagRequest,
} from './types.js';

/** How to reach and authenticate against the VpcPeer API. */
export interface CloudClientOptions {
  /** URL with scheme: `https://vpcpeer.aliyuncs.com` (the only public host) or `http://127.0.0.1:8790`. */
  readonly endpoint: string;
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;
  /** The largest response body read (default 10 MiB); a larger one fails as BadResponse without being read whole. */
  readonly maxResponseBytes?: number;
  /** `v3` (ACS3-HMAC-SHA256, the default of the SDK) or the legacy `v2` (HMAC-SHA1). */
  readonly signatureVersion: 'v3' | 'v2';
  /** Explicit keys; when absent the default credential chain is used (env, RRSA OIDC, profiles, ECS RAM role). */
  readonly credentials?: { accessKeyId: string; accessKeySecret: string; securityToken?: string };
  /** A member account's credentials (src/cloud/assume-role.ts); wins over `credentials`. */
  readonly credentialsProvider?: SdkCredentialsProvider;
}

const RESOURCE_TYPE = 'PeerConnection';
const LIST_PEERS_PAGE = { min: 1, max: 100, default: 100 };
const LIST_TAGS_PAGE = { min: 1, max: 50, default: 50 };
/** Most `Tags.N` sent to ListVpcPeerConnections: the metadata's maxItems (the descriptions say 20). */
const LIST_PEERS_SERVER_TAGS = 10;
const MAX_CLIENT_TOKEN = 64;

function parseEndpoint(endpoint: string): { host: string; protocol: 'http' | 'https' } {
  let url: URL;
  try {
    url = new URL(endpoint.includes('://') ? endpoint : `https://${endpoint}`);
  } catch {
    throw new TagwardenError('CONFIG_INVALID', 'cloud endpoint is not a valid URL', { details: { endpoint } });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TagwardenError('CONFIG_INVALID', 'cloud endpoint scheme must be http or https', {
      details: { endpoint, valid: ['http', 'https'] },
    });
  }
  return { host: url.host, protocol: url.protocol === 'http:' ? 'http' : 'https' };
}

/** A request we refuse to send: classified permanent without spending quota. */
function invalid(api: ApiName, region: string, reason: string): CloudError {
  return new CloudError({ kind: 'permanent', code: 'InvalidRequest', message: `InvalidRequest: ${reason}` }, { api, region });
}

function pageSize(api: ApiName, region: string, given: number | undefined, limits: typeof LIST_PEERS_PAGE): number {
  const size = given ?? limits.default;
  if (!Number.isInteger(size) || size < limits.min || size > limits.max) {
    throw invalid(api, region, `maxResults must be an integer ${limits.min}-${limits.max}`);
  }
  return size;
}

function checkIds(api: ApiName, region: string, ids: readonly string[]): void {
  if (ids.length < 1 || ids.length > MAX_IDS_PER_CALL) {
    throw invalid(api, region, `between 1 and ${MAX_IDS_PER_CALL} resource IDs are required`);
  }
  if (ids.some((id) => typeof id !== 'string' || id === '')) throw invalid(api, region, 'resource IDs must be non-empty');
}

function checkClientToken(api: ApiName, region: string, token: string | undefined): void {
  if (token === undefined) return;
  if (token.length < 1 || token.length > MAX_CLIENT_TOKEN || !/^[\x20-\x7e]+$/.test(token)) {
    throw invalid(api, region, `clientToken must be 1-${MAX_CLIENT_TOKEN} printable ASCII characters`);
  }
}

/**
 * Creates the VpcPeer client. `hooks.before` is awaited before every HTTP request (rate limiting);
 * `hooks.after` sees every outcome (metrics). Every method throws only CloudError; messages never
 * carry secrets, tokens or signatures.
 */
export function createCloudClient(options: CloudClientOptions, hooks: CloudHooks = {}): CloudApi {
  const { host, protocol } = parseEndpoint(options.endpoint);
  const secrets = new Set<string>();
  const remember = (values: readonly string[]): void => {
    for (const v of values) secrets.add(v);
  };
  if (options.credentials) {
    remember([options.credentials.accessKeySecret, options.credentials.securityToken ?? ''].filter((v) => v !== ''));
  }
  const send = createSdkCaller({
    host,
    protocol,
    connectTimeoutMs: options.connectTimeoutMs,
    readTimeoutMs: options.readTimeoutMs,
    ...(options.maxResponseBytes !== undefined ? { maxResponseBytes: options.maxResponseBytes } : {}),
    signatureVersion: options.signatureVersion,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.credentialsProvider ? { credentialsProvider: options.credentialsProvider } : {}),
    onSecrets: remember,
    ...(hooks.signedWith ? { onAccessKeyId: (id: string) => hooks.signedWith?.(id) } : {}),
  });

  const after = (api: ApiName, region: string, outcome: { code: string; seconds: number; failure?: CloudFailure }): void => {
    try {
      hooks.after?.(api, region, outcome);
    } catch {
      // Recording an outcome must never change it.
    }
  };

  /**
   * One HTTP request: hooks around it, the body checked to be a JSON object. The hooks see the quota bucket
   * the call spends (`quotaRegion`: the central one for GetVpcPeerConnectionAttribute), errors the region.
   */
  async function call(api: ApiName, region: string, req: Omit<SdkRequest, 'action'>): Promise<Record<string, unknown>> {
    const bucket = quotaRegion(api, region);
    try {
      await hooks.before?.(api, bucket);
    } catch (err) {
      if (err instanceof CloudError) throw err;
      const reason = err instanceof Error ? err.name : 'unknown';
      throw new CloudError(
        { kind: 'transient', code: 'HookFailed', message: redact(`HookFailed: waiting before the call failed (${reason})`, secrets) },
        { api, region },
      );
    }
    const started = performance.now();
    let failure: CloudFailure | undefined;
    let body: Record<string, unknown> | undefined;
    try {
      const request = () => send({ action: api, ...req });
      const res = await (hooks.slot ? hooks.slot(request) : request());
      body = asBag(res.body);
      if (!body) failure = { kind: 'transient', code: 'BadResponse', message: 'BadResponse: the response body was not a JSON object' };
      else if (body['Success'] === false) {
        failure = classifyError({ Code: 'UnsuccessfulResponse', data: { ...body, Message: 'the service answered Success=false' } }, secrets);
      }
    } catch (err) {
      failure = classifyError(err, secrets);
    }
    const seconds = (performance.now() - started) / 1000;
    if (failure || !body) {
      const f = failure ?? { kind: 'transient' as const, code: 'BadResponse', message: 'BadResponse: empty response' };
      after(api, bucket, { code: f.code, seconds, failure: f });
      throw new CloudError(f, { api, region });
    }
    after(api, bucket, { code: 'OK', seconds });
    return body;
  }

  const requestIdOf = (body: Record<string, unknown>): string => (typeof body['RequestId'] === 'string' ? body['RequestId'] : '');

  /** The next token of a page; a token that repeats the one sent would loop forever. */
  function nextTokenOf(api: ApiName, region: string, body: Record<string, unknown>, sent: string | undefined): string | undefined {
    const next = typeof body['NextToken'] === 'string' && body['NextToken'] !== '' ? body['NextToken'] : undefined;
    if (next !== undefined && next === sent) {
      throw new CloudError(
        { kind: 'transient', code: 'BadResponse', message: 'BadResponse: the service returned the same NextToken again' },
        { api, region },
      );
    }
    return next;
  }

  async function* listPeerConnections(
    region: string,
    filter: ListPeerConnectionsFilter = {},
    startToken?: string,
  ): AsyncGenerator<Page<Resource>> {
    const api: ApiName = 'ListVpcPeerConnections';
    const maxResults = pageSize(api, region, filter.maxResults, LIST_PEERS_PAGE);
    if (filter.vpcIds && filter.vpcIds.length > 2) throw invalid(api, region, 'at most 2 VPC IDs may be given');
    const allTags = filter.tags ?? [];
    if (allTags.length > 20) throw invalid(api, region, 'at most 20 tags may be given');
    // The metadata allows 10 Tags.N, the descriptions 20: send at most 10 and apply the rest here.
    const tags = allTags.slice(0, LIST_PEERS_SERVER_TAGS);
    const localTags = allTags.slice(LIST_PEERS_SERVER_TAGS);
    const keep = (r: Resource): boolean => localTags.every((t) => t.key in r.tags && (t.value === undefined || r.tags[t.key] === t.value));
    // Per the API metadata, Tags and ResourceGroupId travel in the query, the rest in the form body.
    const query = flattenQuery({
      ...(tags.length > 0
        ? { Tags: tags.map((t) => (t.value === undefined ? { Key: t.key } : { Key: t.key, Value: t.value })) }
        : {}),
      ...(filter.resourceGroupId !== undefined ? { ResourceGroupId: filter.resourceGroupId } : {}),
    });
    let token = startToken;
    for (;;) {
      const body = await call(api, region, {
        ...(Object.keys(query).length > 0 ? { query } : {}),
        body: {
          RegionId: region,
          MaxResults: maxResults,
          ...(token !== undefined ? { NextToken: token } : {}),
          ...(filter.instanceId !== undefined ? { InstanceId: filter.instanceId } : {}),
          ...(filter.name !== undefined ? { Name: filter.name } : {}),
          // VpcId uses the "simple" array style: one comma-joined value.
          ...(filter.vpcIds && filter.vpcIds.length > 0 ? { VpcId: filter.vpcIds.join(',') } : {}),
        },
      });
      const items = listOf(body['VpcPeerConnects'], 'VpcPeerConnect')
        .map((item) => toResource(item, region))
        .filter((r): r is Resource => r !== undefined && keep(r));
      const nextToken = nextTokenOf(api, region, body, token);
      const total = Number(body['TotalCount']);
      yield {
        items,
        requestId: requestIdOf(body),
        ...(nextToken !== undefined ? { nextToken } : {}),
        ...(body['TotalCount'] !== undefined && body['TotalCount'] !== '' && Number.isInteger(total) && total >= 0 ? { totalCount: total } : {}),
      };
      if (nextToken === undefined) return;
      token = nextToken;
    }
  }

  async function* listTagResources(
    region: string,
    selector: TagResourcesSelector,
    startToken?: string,
  ): AsyncGenerator<Page<TagRow>> {
    const api: ApiName = 'ListTagResources';
    const maxResults = pageSize(api, region, selector.maxResults, LIST_TAGS_PAGE);
    const ids = selector.resourceIds ?? [];
    const keys = selector.tagKeys ?? [];
    if (ids.length === 0 && keys.length === 0) throw invalid(api, region, 'give resource IDs or tag keys');
    if (ids.length > 0) checkIds(api, region, ids);
    if (keys.length > MAX_KEYS_PER_CALL) throw invalid(api, region, `at most ${MAX_KEYS_PER_CALL} tag keys may be given`);
    if (keys.some((k) => k === '')) throw invalid(api, region, 'tag keys must be non-empty');
    let token = startToken;
    for (;;) {
      const body = await call(api, region, {
        query: flattenQuery({
          RegionId: region,
          ResourceType: RESOURCE_TYPE,
          ...(ids.length > 0 ? { ResourceId: [...ids] } : {}),
          ...(keys.length > 0 ? { Tag: keys.map((k) => ({ Key: k })) } : {}),
          ...(selector.category !== undefined ? { Category: selector.category } : {}),
          MaxResults: maxResults,
          ...(token !== undefined ? { NextToken: token } : {}),
        }),
      });
      const items = listOf(body['TagResources'], 'TagResource')
        .map(toTagRow)
        .filter((r): r is TagRow => r !== undefined);
      const nextToken = nextTokenOf(api, region, body, token);
      yield { items, requestId: requestIdOf(body), ...(nextToken !== undefined ? { nextToken } : {}) };
      if (nextToken === undefined) return;
      token = nextToken;
    }
  }

  async function getPeerConnection(region: string, id: string): Promise<Resource | null> {
    const api: ApiName = 'GetVpcPeerConnectionAttribute';
    if (id === '') throw invalid(api, region, 'an instance ID is required');
    let body: Record<string, unknown>;
    try {
      body = await call(api, region, { body: { InstanceId: id } });
    } catch (err) {
      if (err instanceof CloudError && err.failure.kind === 'not-found') return null;
      throw err;
    }
    const resource = toResource(body, region);
    if (!resource) {
      throw new CloudError(
        { kind: 'transient', code: 'BadResponse', message: 'BadResponse: the attribute response has no InstanceId' },
        { api, region },
      );
    }
    return resource;
  }

  async function untagResources(req: UntagRequest): Promise<{ requestId: string }> {
    const api: ApiName = 'UnTagResources';
    checkIds(api, req.region, req.resourceIds);
    checkClientToken(api, req.region, req.clientToken);
    if (!req.all) {
      if (req.tagKeys.length < 1 || req.tagKeys.length > MAX_KEYS_PER_CALL) {
        throw invalid(api, req.region, `between 1 and ${MAX_KEYS_PER_CALL} tag keys are required unless all is set`);
      }
    }
    const body = await call(api, req.region, {
      query: flattenQuery({
        RegionId: req.region,
        ResourceType: RESOURCE_TYPE,
        ResourceId: [...req.resourceIds],
        ...(req.all ? { All: true } : { TagKey: [...req.tagKeys], All: false }),
        ClientToken: req.clientToken,
      }),
    });
    return { requestId: requestIdOf(body) };
  }

  async function tagResources(req: TagRequest): Promise<{ requestId: string }> {
    const api: ApiName = 'TagResources';
    checkIds(api, req.region, req.resourceIds);
    checkClientToken(api, req.region, req.clientToken);
    const entries = Object.entries(req.tags);
    if (entries.length < 1 || entries.length > MAX_KEYS_PER_CALL) {
      throw invalid(api, req.region, `between 1 and ${MAX_KEYS_PER_CALL} tags are required`);
    }
    const body = await call(api, req.region, {
      query: flattenQuery({
        RegionId: req.region,
        ResourceType: RESOURCE_TYPE,
        ResourceId: [...req.resourceIds],
        Tag: entries.map(([Key, Value]) => ({ Key, Value })),
        ...(req.clientToken !== undefined ? { ClientToken: req.clientToken } : {}),
      }),
    });
    return { requestId: requestIdOf(body) };
  }

  return { listPeerConnections, listTagResources, getPeerConnection, untagResources, tagResources };
}
