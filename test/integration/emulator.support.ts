// Test support for the emulator suites: an official-SDK caller (V3 and V2) and an independent
// hand-rolled signer for crafted requests (stale timestamps, reused nonces). Not a test file itself.
import { createHash, createHmac, randomUUID } from 'node:crypto';
import * as OpenApiNs from '@alicloud/openapi-core';
import * as CredentialNs from '@alicloud/credentials';
import * as TeaUtilNs from '@alicloud/tea-util';

// The packages are CommonJS with `exports.default = Class`. Node's ESM loader makes `ns.default` the whole
// `module.exports` (class one level deeper); vitest's interop makes `ns.default` the class itself. Named
// exports (`$OpenApiUtil`, `Config`, ...) are on the namespace either way.
function classOf<T>(dflt: { default: T }): T {
  return typeof dflt === 'function' ? (dflt as unknown as T) : dflt.default;
}
const OpenApi = classOf(OpenApiNs.default);
const { Config, Params, OpenApiRequest } = OpenApiNs.$OpenApiUtil;
const OpenApiUtil = OpenApiNs.OpenApiUtil;
const Credential = classOf(CredentialNs.default);
const CredentialConfig = CredentialNs.Config;
const RuntimeOptions = TeaUtilNs.RuntimeOptions;

export const TEST_KEY = { accessKeyId: 'tagwarden-test', accessKeySecret: 'tagwarden-test-secret' };
export const VERSION = '2022-01-01';

/** An SDK error as openapi-core 1.0.8 throws it. */
export interface SdkError {
  name: string;
  code: string;
  statusCode: number;
  data?: Record<string, unknown>;
  message: string;
}

export interface SdkCallerOptions {
  v2?: boolean;
  accessKeyId?: string;
  accessKeySecret?: string;
  securityToken?: string;
  method?: 'GET' | 'POST';
}

/** Calls emulator actions through `@alicloud/openapi-core` callApi, exactly as the cloud client does. */
export interface SdkCaller {
  /** `query` and `body` may hold arrays/objects: OpenApiUtil.query() flattens them. Returns the JSON body. */
  call(action: string, query?: Record<string, unknown>, body?: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Same, expecting a failure: resolves with the thrown SDK error. */
  fail(action: string, query?: Record<string, unknown>, body?: Record<string, unknown>): Promise<SdkError>;
}

export function sdkCaller(url: string, options: SdkCallerOptions = {}): SdkCaller {
  const endpoint = new URL(url).host;
  const credential = new Credential(
    new CredentialConfig(
      options.securityToken === undefined
        ? { type: 'access_key', accessKeyId: options.accessKeyId ?? TEST_KEY.accessKeyId, accessKeySecret: options.accessKeySecret ?? TEST_KEY.accessKeySecret }
        : {
            type: 'sts',
            accessKeyId: options.accessKeyId ?? TEST_KEY.accessKeyId,
            accessKeySecret: options.accessKeySecret ?? TEST_KEY.accessKeySecret,
            securityToken: options.securityToken,
          },
    ),
  );
  const client = new OpenApi(
    new Config({
      credential,
      endpoint,
      protocol: 'http',
      regionId: 'cn-hangzhou',
      readTimeout: 30_000,
      connectTimeout: 5_000,
      ...(options.v2 === true ? { signatureAlgorithm: 'v2' } : {}),
    }),
  );
  const runtime = new RuntimeOptions({ readTimeout: 30_000, connectTimeout: 5_000, autoretry: false });
  const call = async (action: string, query: Record<string, unknown> = {}, body?: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const params = new Params({
      action, version: VERSION, protocol: 'HTTP', pathname: '/', method: options.method ?? 'POST', authType: 'AK', style: 'RPC',
      reqBodyType: 'formData', bodyType: 'json',
    });
    const request = new OpenApiRequest({ query: OpenApiUtil.query(query), ...(body === undefined ? {} : { body }) });
    const res = (await client.callApi(params, request, runtime)) as { body: Record<string, unknown> };
    return res.body;
  };
  return {
    call,
    async fail(action, query, body) {
      try {
        await call(action, query, body);
      } catch (err) {
        return err as SdkError;
      }
      throw new Error(`${action} was expected to fail but succeeded`);
    },
  };
}

// ---- an independent signer (deliberately not src/emulator/signature.ts) for crafted requests

function enc(s: string): string {
  return encodeURIComponent(s).replace(/!/g, '%21').replace(/'/g, '%27').replace(/\(/g, '%28').replace(/\)/g, '%29').replace(/\*/g, '%2A');
}

function sortedQuery(params: Record<string, string>): string {
  return Object.keys(params).sort().map((k) => `${enc(k)}=${enc(params[k] ?? '')}`).join('&');
}

/** `yyyy-MM-ddTHH:mm:ssZ` of an epoch-ms time. */
export function isoNoMillis(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface CraftOptions {
  action: string;
  params: Record<string, string>;
  timestamp?: number;
  nonce?: string;
  accessKeyId?: string;
  accessKeySecret?: string;
  version?: string;
  /** V3 only: send this body instead of the signed one (to break x-acs-content-sha256). */
  sendBody?: string;
  /** V3 only: more headers to send (signed unless listed in `unsigned`). */
  extraHeaders?: Record<string, string>;
  /** V3 only: headers sent but left out of SignedHeaders. */
  unsigned?: string[];
}

/** Sends a V2-signed POST (everything in the query, empty body). Returns status and JSON body. */
export async function sendV2(url: string, o: CraftOptions): Promise<{ status: number; body: Record<string, unknown> }> {
  const all: Record<string, string> = {
    ...o.params,
    Action: o.action,
    Version: o.version ?? VERSION,
    Format: 'JSON',
    AccessKeyId: o.accessKeyId ?? TEST_KEY.accessKeyId,
    SignatureMethod: 'HMAC-SHA1',
    SignatureVersion: '1.0',
    SignatureNonce: o.nonce ?? randomUUID(),
    Timestamp: isoNoMillis(o.timestamp ?? Date.now()),
  };
  const toSign = `POST&${enc('/')}&${enc(sortedQuery(all))}`;
  all['Signature'] = createHmac('sha1', `${o.accessKeySecret ?? TEST_KEY.accessKeySecret}&`).update(toSign).digest('base64');
  const res = await fetch(`${url}/?${sortedQuery(all)}`, { method: 'POST' });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A V3-signed POST with the parameters in a form body, ready for fetch. */
export function craftV3(url: string, o: CraftOptions): { url: string; init: RequestInit } {
  const host = new URL(url).host;
  const body = sortedQuery(o.params);
  const headers: Record<string, string> = {
    host,
    'content-type': 'application/x-www-form-urlencoded',
    'x-acs-action': o.action,
    'x-acs-version': o.version ?? VERSION,
    'x-acs-date': isoNoMillis(o.timestamp ?? Date.now()),
    'x-acs-signature-nonce': o.nonce ?? randomUUID(),
    'x-acs-content-sha256': createHash('sha256').update(body).digest('hex'),
    ...o.extraHeaders,
  };
  const names = Object.keys(headers).filter((n) => !(o.unsigned ?? []).includes(n)).sort();
  const canonical = ['POST', '/', '', names.map((n) => `${n}:${headers[n] ?? ''}\n`).join(''), names.join(';'), headers['x-acs-content-sha256']].join('\n');
  const toSign = `ACS3-HMAC-SHA256\n${createHash('sha256').update(canonical).digest('hex')}`;
  const signature = createHmac('sha256', o.accessKeySecret ?? TEST_KEY.accessKeySecret).update(toSign).digest('hex');
  headers['authorization'] = `ACS3-HMAC-SHA256 Credential=${o.accessKeyId ?? TEST_KEY.accessKeyId},SignedHeaders=${names.join(';')},Signature=${signature}`;
  const { host: _host, ...sendHeaders } = headers;
  return { url: `${url}/`, init: { method: 'POST', headers: sendHeaders, body: o.sendBody ?? body } };
}

/** Sends a V3-signed POST with the parameters in a form body. Returns status and JSON body. */
export async function sendV3(url: string, o: CraftOptions): Promise<{ status: number; body: Record<string, unknown> }> {
  const req = craftV3(url, o);
  const res = await fetch(req.url, req.init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
