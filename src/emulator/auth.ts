// Request authentication: V3 (Authorization header) and V2 (Signature parameter), timestamps and nonces.
// Must not look at business parameters beyond what the signature covers.
import type { IncomingHttpHeaders } from 'node:http';
import { ApiFailure, missing } from './api-errors.js';
import {
  V3_ALGORITHM, parseV3Authorization, safeEqual, sha256Hex, v2Signature, v3Signature,
} from './signature.js';
import { TtlMap } from './ttl-map.js';
import type { EmulatorCredential } from './types.js';

/** Largest accepted clock skew of x-acs-date / Timestamp (reference §3.1-3.2). */
export const MAX_CLOCK_SKEW_MS = 15 * 60_000;

/** Headers a V3 request must carry and sign, whatever else it sends. */
const V3_REQUIRED_SIGNED = ['host', 'x-acs-action', 'x-acs-version', 'x-acs-date', 'x-acs-signature-nonce', 'x-acs-content-sha256'];

/**
 * Headers a V3 request must sign when it carries them: `content-type` and every `x-acs-*` header (the V3
 * specification's CanonicalHeaders, reference §3.2). An unsigned one could be changed in transit.
 */
export function unsignedV3Headers(headers: IncomingHttpHeaders, signed: readonly string[]): string[] {
  return Object.keys(headers)
    .map((h) => h.toLowerCase())
    .filter((h) => (h === 'content-type' || h.startsWith('x-acs-')) && !signed.includes(h))
    .sort();
}

/** The V2 common parameters: never business parameters. */
export const V2_COMMON_PARAMS: ReadonlySet<string> = new Set([
  'Action', 'Version', 'Format', 'AccessKeyId', 'Signature', 'SignatureMethod', 'SignatureVersion',
  'SignatureNonce', 'SignatureType', 'Timestamp', 'SecurityToken', 'BearerToken',
]);

/** A request as the authenticator sees it: decoded query, raw body, body parameters, headers. */
export interface SignedRequest {
  method: string;
  path: string;
  query: Readonly<Record<string, string>>;
  body: Buffer;
  /** Query and form-body parameters merged (body wins). */
  params: Readonly<Record<string, string>>;
  headers: IncomingHttpHeaders;
}

/** Who signed, and how. */
export interface AuthResult {
  accessKeyId: string;
  signature: 'v2' | 'v3';
  /** The member account a temporary (STS) key belongs to; absent for the emulator's own access keys. */
  account?: string;
}

/** A temporary key issued by the emulated STS AssumeRole: valid only with its token, only until it expires. */
export interface TemporaryKey {
  readonly secret: string;
  readonly securityToken: string;
  readonly account: string;
  /** Epoch ms. */
  readonly expiresAt: number;
}

/** One header's value (repeated headers joined with `,`). */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** Which signature a request carries, by its shape: V3 header, V2 parameters, or none. */
export function signatureKind(req: SignedRequest): 'v2' | 'v3' | null {
  if (header(req.headers, 'authorization') !== undefined) return 'v3';
  if (req.params['Signature'] !== undefined || req.params['AccessKeyId'] !== undefined) return 'v2';
  return null;
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

function parseTimestamp(text: string, name: string): number {
  const ms = TIMESTAMP.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new ApiFailure('InvalidTimeStamp.Format', `The ${name} "${text}" is not in the format yyyy-MM-ddTHH:mm:ssZ.`);
  }
  return ms;
}

/** Verifies signatures against a set of credentials, and remembers nonces for `nonceTtlMs`. */
export class Authenticator {
  private readonly keys = new Map<string, EmulatorCredential>();
  private readonly nonces: TtlMap<true>;
  /** The member account of each key issued by AssumeRole. */
  private readonly accountOf = new Map<string, string>();

  constructor(
    credentials: readonly EmulatorCredential[],
    nonceTtlMs: number,
    private readonly now: () => number,
  ) {
    for (const c of credentials) this.addCredential(c);
    this.nonces = new TtlMap(nonceTtlMs, now);
  }

  /** Accepts one more access key (or replaces the one with its id), e.g. STS credentials just issued. */
  addCredential(credential: EmulatorCredential): void {
    if (credential.accessKeyId === '' || credential.accessKeySecret === '') throw new Error('credentials: accessKeyId and accessKeySecret must be non-empty');
    if (credential.securityToken === '') throw new Error('credentials: securityToken must be non-empty when given');
    this.keys.set(credential.accessKeyId, { ...credential });
  }

  /** Stops accepting an access key; true when it was known. */
  removeCredential(accessKeyId: string): boolean {
    return this.keys.delete(accessKeyId);
  }

  /** Registers a key issued by AssumeRole: an STS credential bound to one member account. */
  addTemporary(accessKeyId: string, key: TemporaryKey): void {
    this.addCredential({ accessKeyId, accessKeySecret: key.secret, securityToken: key.securityToken, expiresAt: key.expiresAt });
    this.accountOf.set(accessKeyId, key.account);
  }

  /** The access key id a request claims, if it can be read (for the call log). */
  claimedKey(req: SignedRequest): string | null {
    const kind = signatureKind(req);
    if (kind === 'v3') return parseV3Authorization(header(req.headers, 'authorization') ?? '')?.accessKeyId ?? null;
    if (kind === 'v2') return req.params['AccessKeyId'] ?? null;
    return null;
  }

  /** Verifies the request's signature; throws ApiFailure with the documented gateway code. */
  verify(req: SignedRequest): AuthResult {
    const kind = signatureKind(req);
    if (kind === 'v3') return this.verifyV3(req);
    if (kind === 'v2') return this.verifyV2(req);
    throw missing('AccessKeyId');
  }

  private credentialOf(accessKeyId: string): EmulatorCredential {
    const credential = this.keys.get(accessKeyId);
    if (credential === undefined) throw new ApiFailure('InvalidAccessKeyId.NotFound', 'Specified access key is not found.');
    return credential;
  }

  /** An STS credential needs its own token, unexpired; a token sent with a plain access key is refused too. */
  private checkToken(credential: EmulatorCredential, sent: string | undefined): void {
    if (credential.securityToken === undefined) {
      if (sent !== undefined) {
        throw new ApiFailure('InvalidSecurityToken.MismatchWithAccessKey', 'The security token does not belong to the access key.');
      }
      return;
    }
    if (sent === undefined) throw new ApiFailure('MissingSecurityToken', 'SecurityToken is mandatory for this access key.');
    if (!safeEqual(sent, credential.securityToken)) {
      throw new ApiFailure('InvalidSecurityToken.MismatchWithAccessKey', 'The security token does not belong to the access key.');
    }
    if (credential.expiresAt !== undefined && this.now() >= credential.expiresAt) {
      throw new ApiFailure('InvalidSecurityToken.Expired', 'Specified SecurityToken is expired.');
    }
  }

  private checkClock(ms: number): void {
    if (Math.abs(this.now() - ms) > MAX_CLOCK_SKEW_MS) {
      throw new ApiFailure('InvalidTimeStamp.Expired', 'Specified time stamp or date header is expired.');
    }
  }

  private useNonce(accessKeyId: string, nonce: string): void {
    const key = `${accessKeyId}\n${nonce}`;
    if (this.nonces.has(key)) throw new ApiFailure('SignatureNonceUsed', 'Specified signature nonce was used already.');
    this.nonces.set(key, true);
  }

  private verifyV3(req: SignedRequest): AuthResult {
    const auth = parseV3Authorization(header(req.headers, 'authorization') ?? '');
    if (auth === undefined) throw new ApiFailure('IncompleteSignature', 'The Authorization header is malformed.');
    if (auth.algorithm !== V3_ALGORITHM) {
      throw new ApiFailure('IncompleteSignature', `The signature algorithm "${auth.algorithm}" is not supported; use ${V3_ALGORITHM}.`);
    }
    const credential = this.credentialOf(auth.accessKeyId);
    for (const name of V3_REQUIRED_SIGNED) {
      if (!auth.signedHeaders.includes(name) || header(req.headers, name) === undefined) {
        throw new ApiFailure('IncompleteSignature', `The request must carry and sign the header "${name}".`);
      }
    }
    const unsigned = unsignedV3Headers(req.headers, auth.signedHeaders);
    if (unsigned.length > 0) {
      throw new ApiFailure('IncompleteSignature', `The request carries headers it does not sign: ${unsigned.join(', ')}; sign content-type and every x-acs-* header.`);
    }
    const headers: Record<string, string> = {};
    for (const name of auth.signedHeaders) {
      const v = header(req.headers, name);
      if (v === undefined) throw new ApiFailure('IncompleteSignature', `The signed header "${name}" is missing.`);
      headers[name] = v;
    }
    this.checkClock(parseTimestamp(headers['x-acs-date'] ?? '', 'x-acs-date'));
    const hashedPayload = headers['x-acs-content-sha256'] ?? '';
    if (hashedPayload !== sha256Hex(req.body)) {
      throw new ApiFailure('SignatureDoesNotMatch', 'The x-acs-content-sha256 header does not match the request body.');
    }
    const expected = v3Signature(
      { method: req.method, path: req.path, query: req.query, headers, signedHeaders: auth.signedHeaders, hashedPayload },
      credential.accessKeySecret,
    );
    if (!safeEqual(expected, auth.signature.toLowerCase())) {
      throw new ApiFailure('SignatureDoesNotMatch', 'Specified signature does not match our calculation.');
    }
    this.checkToken(credential, headers['x-acs-security-token']);
    const account = this.accountOf.get(auth.accessKeyId);
    this.useNonce(auth.accessKeyId, headers['x-acs-signature-nonce'] ?? '');
    return { accessKeyId: auth.accessKeyId, signature: 'v3', ...(account === undefined ? {} : { account }) };
  }

  private verifyV2(req: SignedRequest): AuthResult {
    const p = req.params;
    for (const name of ['AccessKeyId', 'Signature', 'SignatureMethod', 'SignatureVersion', 'SignatureNonce', 'Timestamp']) {
      if (p[name] === undefined || p[name] === '') throw missing(name);
    }
    if (p['SignatureMethod'] !== 'HMAC-SHA1') {
      throw new ApiFailure('IncompleteSignature', `The SignatureMethod "${p['SignatureMethod']}" is not supported; use HMAC-SHA1.`);
    }
    if (p['SignatureVersion'] !== '1.0') {
      throw new ApiFailure('IncompleteSignature', `The SignatureVersion "${p['SignatureVersion']}" is not supported; use 1.0.`);
    }
    const accessKeyId = p['AccessKeyId'] ?? '';
    const credential = this.credentialOf(accessKeyId);
    this.checkClock(parseTimestamp(p['Timestamp'] ?? '', 'Timestamp'));
    const expected = v2Signature(req.method, p, credential.accessKeySecret);
    if (!safeEqual(expected, p['Signature'] ?? '')) {
      throw new ApiFailure('SignatureDoesNotMatch', 'Specified signature does not match our calculation.');
    }
    const token = p['SecurityToken'];
    this.checkToken(credential, token === undefined || token === '' ? undefined : token);
    const account = this.accountOf.get(accessKeyId);
    this.useNonce(accessKeyId, p['SignatureNonce'] ?? '');
    return { accessKeyId, signature: 'v2', ...(account === undefined ? {} : { account }) };
  }
}
