// The one place that touches the @alicloud packages: CommonJS interop, SDK client construction,
// and the credential guard. Everything else in cloud/ talks to the narrow `SdkCaller` below.
import * as openapiCore from '@alicloud/openapi-core';
import * as credentialsPkg from '@alicloud/credentials';
import * as teaUtil from '@alicloud/tea-util';
import { DEFAULT_MAX_RESPONSE_BYTES, separateSdkTimeouts, withResponseLimit } from './sdk-transport.js';

/**
 * The @alicloud packages are CommonJS with `exports.default = Class`. Node's ESM loader makes the
 * namespace's `default` the whole `module.exports` (class one level down), while vitest's interop hands
 * over the class itself; named exports work the same in both.
 */
function classOf<M extends { default: unknown }>(mod: M | M['default']): M['default'] {
  return (typeof mod === 'function' ? mod : (mod as M).default) as M['default'];
}

const OpenApiClient = classOf(openapiCore.default);
const { Config: OpenApiConfig, Params, OpenApiRequest } = openapiCore.$OpenApiUtil;
const Credential = classOf(credentialsPkg.default);
const CredentialConfig = credentialsPkg.Config;
const { RuntimeOptions } = teaUtil;

/** Flattens arrays and objects to `Name.N` / `Name.N.Key` the way the service expects. */
export const flattenQuery = (params: Record<string, unknown>): Record<string, string> =>
  openapiCore.OpenApiUtil.query(params) as Record<string, string>;

export type SdkCredential = InstanceType<typeof Credential>;
/** A credentials provider of `@alicloud/credentials` (e.g. a per-account RAMRoleARNCredentialsProvider). */
export type SdkCredentialsProvider = credentialsPkg.CredentialsProvider;
type CredentialModel = Awaited<ReturnType<SdkCredential['getCredential']>>;

/** Raised when no credential provider could produce credentials; classified as `auth`. */
export class CredentialsUnavailableError extends Error {
  override readonly name = 'CredentialsUnavailableError';
  readonly code = 'CredentialsUnavailable';
}

/**
 * Wraps the credential so provider failures surface as one recognisable error, and remembers every
 * secret and token it hands out so error messages can be scrubbed of them.
 */
class GuardedCredential extends Credential {
  constructor(
    config: InstanceType<typeof CredentialConfig> | null,
    private readonly onSecrets: (secrets: readonly string[]) => void,
    provider: SdkCredentialsProvider | null = null,
    private readonly onAccessKeyId?: (accessKeyId: string) => Promise<void> | void,
  ) {
    super(config, provider);
  }

  override async getCredential(): Promise<CredentialModel> {
    let model: CredentialModel;
    try {
      model = await super.getCredential();
    } catch (err) {
      // Provider messages name variables and files, never secret values; still cut them short.
      const reason = err instanceof Error ? err.message.slice(0, 300) : 'unknown reason';
      throw new CredentialsUnavailableError(`no credentials available: ${reason}`);
    }
    this.onSecrets([model.accessKeySecret, model.securityToken, model.bearerToken].filter(isNonEmpty));
    // Before the request is signed and sent: whoever sees its ActionTrail event can already know it is ours.
    if (this.onAccessKeyId && isNonEmpty(model.accessKeyId)) {
      try {
        await this.onAccessKeyId(model.accessKeyId);
      } catch {
        // Recording who we are must never fail the call.
      }
    }
    return model;
  }
}

const isNonEmpty = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

export interface SdkCallerOptions {
  /** Host with port, no scheme: `vpcpeer.aliyuncs.com` or `127.0.0.1:8790`. */
  readonly host: string;
  readonly protocol: 'http' | 'https';
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;
  /** The largest response body read (default 10 MiB); a larger one fails as ResponseTooLargeError (BadResponse). */
  readonly maxResponseBytes?: number;
  readonly signatureVersion: 'v3' | 'v2';
  readonly credentials?: { accessKeyId: string; accessKeySecret: string; securityToken?: string };
  /** A provider to take credentials from (a member account's assumed role); wins over `credentials`. */
  readonly credentialsProvider?: SdkCredentialsProvider;
  /** API version of the product called; default VpcPeer 2022-01-01. */
  readonly apiVersion?: string;
  /** Receives every secret value seen, for redaction. */
  readonly onSecrets: (secrets: readonly string[]) => void;
  /** Awaited with the access key ID each request is signed with (see CloudHooks.signedWith). */
  readonly onAccessKeyId?: (accessKeyId: string) => Promise<void> | void;
}

export interface SdkRequest {
  readonly action: string;
  /** Already flattened (see `flattenQuery`). */
  readonly query?: Record<string, string>;
  /** Form fields; the SDK flattens them itself. */
  readonly body?: Record<string, unknown>;
}

export interface SdkResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: unknown;
}

/** One signed RPC call, no retries. Throws whatever the SDK throws (classified by the caller). */
export type SdkCaller = (req: SdkRequest) => Promise<SdkResponse>;

const API_VERSION = '2022-01-01';

/** Builds the SDK client once and returns a caller for VpcPeer RPC actions. */
export function createSdkCaller(options: SdkCallerOptions): SdkCaller {
  // Connect timeout for the connection, read timeout for the answer (see sdk-transport.ts).
  separateSdkTimeouts();
  let credentialConfig: InstanceType<typeof CredentialConfig> | null = null;
  if (options.credentials && !options.credentialsProvider) {
    const { accessKeyId, accessKeySecret, securityToken } = options.credentials;
    credentialConfig = new CredentialConfig(
      securityToken
        ? { type: 'sts', accessKeyId, accessKeySecret, securityToken }
        : { type: 'access_key', accessKeyId, accessKeySecret },
    );
  }
  // Without an explicit config this is the default chain: env keys, RRSA OIDC, profiles, ECS RAM role, URI.
  const credential = new GuardedCredential(credentialConfig, options.onSecrets, options.credentialsProvider ?? null, options.onAccessKeyId);

  const client = new OpenApiClient(
    new OpenApiConfig({
      credential,
      endpoint: options.host,
      protocol: options.protocol,
      connectTimeout: options.connectTimeoutMs,
      readTimeout: options.readTimeoutMs,
      // Appended to the SDK's user agent, for people reading ActionTrail. Never trusted to recognise our own calls:
      // any client can send it (src/events/actiontrail.ts uses the signing access key instead).
      userAgent: 'tagwarden/1',
      // Absent `signatureAlgorithm` means V3 (ACS3-HMAC-SHA256); 'v2' selects the HMAC-SHA1 RPC signature.
      ...(options.signatureVersion === 'v2' ? { signatureAlgorithm: 'v2' } : {}),
      // No `retryOptions`: the SDK then makes exactly one attempt. Retries belong to the queue.
    }),
  );
  const runtime = new RuntimeOptions({
    autoretry: false,
    maxAttempts: 1,
    connectTimeout: options.connectTimeoutMs,
    readTimeout: options.readTimeoutMs,
  });

  return async (req) => {
    const params = new Params({
      action: req.action,
      version: options.apiVersion ?? API_VERSION,
      protocol: options.protocol.toUpperCase(),
      pathname: '/',
      method: 'POST',
      authType: 'AK',
      style: 'RPC',
      reqBodyType: 'formData',
      bodyType: 'json',
    });
    const request = new OpenApiRequest({
      ...(req.query ? { query: req.query } : {}),
      ...(req.body ? { body: req.body } : {}),
    });
    const res = (await withResponseLimit(options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES, () => client.callApi(params, request, runtime))) as Partial<SdkResponse>;
    return {
      statusCode: typeof res.statusCode === 'number' ? res.statusCode : 200,
      headers: res.headers ?? {},
      body: res.body,
    };
  };
}
