// Canonicalisation and signatures of Alibaba Cloud RPC requests: V2 (HMAC-SHA1) and V3 (ACS3-HMAC-SHA256).
// Pure functions (reference §3); the emulator verifies with them and the tests replay the official vectors.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** The V3 algorithm name, as it opens the Authorization header. */
export const V3_ALGORITHM = 'ACS3-HMAC-SHA256';

/** SHA-256 of the empty body, lowercase hex. */
export const EMPTY_BODY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * RFC 3986 percent-encoding as Alibaba signs it: `A-Z a-z 0-9 - _ . ~` stay, everything else is
 * `%XY` in uppercase hex (space is `%20`, `*` is `%2A`). Throws URIError on a lone surrogate.
 */
export function percentEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function byName(a: string, b: string): number {
  // Ascending byte order of the UTF-8 names; for the ASCII names of this API the code-unit order is the same.
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `k=v&...` of every parameter but `Signature`, sorted by name, names and values percent-encoded. */
export function v2CanonicalQuery(params: Readonly<Record<string, string>>): string {
  return Object.keys(params)
    .filter((k) => k !== 'Signature')
    .sort(byName)
    .map((k) => `${percentEncode(k)}=${percentEncode(params[k] ?? '')}`)
    .join('&');
}

/** V2 StringToSign: `METHOD&%2F&percentEncode(CanonicalizedQueryString)`. */
export function v2StringToSign(method: string, params: Readonly<Record<string, string>>): string {
  return `${method.toUpperCase()}&${percentEncode('/')}&${percentEncode(v2CanonicalQuery(params))}`;
}

/** V2 signature: Base64(HMAC-SHA1(secret + '&', StringToSign)). */
export function v2Signature(method: string, params: Readonly<Record<string, string>>, accessKeySecret: string): string {
  return createHmac('sha1', `${accessKeySecret}&`).update(v2StringToSign(method, params), 'utf8').digest('base64');
}

/** What a V3 canonical request is built from. Header names lowercase; query values decoded. */
export interface V3RequestParts {
  method: string;
  /** The request path, `/` for RPC. */
  path: string;
  query: Readonly<Record<string, string>>;
  headers: Readonly<Record<string, string>>;
  /** Lowercase header names to sign, in any order (they are sorted). */
  signedHeaders: readonly string[];
  /** Lowercase hex SHA-256 of the body (the x-acs-content-sha256 value). */
  hashedPayload: string;
}

/** The V3 canonical query string: sorted, names and values percent-encoded, `k=` for empty values. */
export function v3CanonicalQuery(query: Readonly<Record<string, string>>): string {
  return Object.keys(query)
    .sort(byName)
    .map((k) => `${percentEncode(k)}=${percentEncode(query[k] ?? '')}`)
    .join('&');
}

/** The V3 canonical request (reference §3.2), lines joined with `\n`. */
export function v3CanonicalRequest(parts: V3RequestParts): string {
  const names = [...new Set(parts.signedHeaders.map((h) => h.toLowerCase()))].sort(byName);
  const canonicalHeaders = names.map((n) => `${n}:${(parts.headers[n] ?? '').trim()}\n`).join('');
  return [
    parts.method.toUpperCase(),
    parts.path === '' ? '/' : parts.path,
    v3CanonicalQuery(parts.query),
    canonicalHeaders,
    names.join(';'),
    parts.hashedPayload,
  ].join('\n');
}

/** Lowercase hex SHA-256. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** V3 StringToSign: `ACS3-HMAC-SHA256\n` + hex(SHA-256(canonical request)). */
export function v3StringToSign(canonicalRequest: string): string {
  return `${V3_ALGORITHM}\n${sha256Hex(canonicalRequest)}`;
}

/** V3 signature: lowercase hex HMAC-SHA256 keyed with the raw secret. */
export function v3Signature(parts: V3RequestParts, accessKeySecret: string): string {
  return createHmac('sha256', accessKeySecret).update(v3StringToSign(v3CanonicalRequest(parts)), 'utf8').digest('hex');
}

/** The parsed V3 Authorization header. */
export interface V3Authorization {
  algorithm: string;
  accessKeyId: string;
  signedHeaders: string[];
  signature: string;
}

/** Parses `ACS3-HMAC-SHA256 Credential=..,SignedHeaders=a;b,Signature=..`; undefined when malformed. */
export function parseV3Authorization(header: string): V3Authorization | undefined {
  const m = /^(\S+)\s+(.*)$/.exec(header.trim());
  if (!m) return undefined;
  const fields = new Map<string, string>();
  for (const part of (m[2] ?? '').split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const accessKeyId = fields.get('Credential');
  const signed = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!accessKeyId || !signed || !signature) return undefined;
  return {
    algorithm: m[1] ?? '',
    accessKeyId,
    signedHeaders: signed.split(';').map((h) => h.trim().toLowerCase()).filter((h) => h !== ''),
    signature,
  };
}

/** Constant-time string comparison (false on different lengths). */
export function safeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}
