// Bearer-token and dashboard-session checks. The token is compared in constant time and never logged or echoed.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** Name of the dashboard session cookie. */
export const SESSION_COOKIE = 'tagwarden_admin';
/** How long a dashboard login lasts. */
export const SESSION_SECONDS = 12 * 3600;

const SESSION_LABEL = 'tagwarden-admin-session-v1';

export type BearerResult = 'ok' | 'missing' | 'invalid';

export interface Authenticator {
  /** Checks `Authorization: Bearer <token>`. */
  bearer(headers: IncomingHttpHeaders): BearerResult;
  /** True when `candidate` is the token (constant time). */
  matches(candidate: string): boolean;
  /** A session cookie value: expiry and an HMAC keyed by the token, so any replica can verify it. */
  issueSession(nowMs: number): string;
  /** True when the request carries an unexpired session cookie issued for this token. */
  session(headers: IncomingHttpHeaders, nowMs: number): boolean;
}

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** Builds the checks for one token. Hashing both sides first makes the comparison length-independent. */
export function createAuthenticator(token: string): Authenticator {
  const expected = digest(token);
  const matches = (candidate: string): boolean => timingSafeEqual(digest(candidate), expected);
  const mac = (expiresAt: number): Buffer => createHmac('sha256', token).update(`${SESSION_LABEL}|${expiresAt}`).digest();

  return {
    bearer(headers) {
      const header = headers.authorization;
      if (!header) return 'missing';
      const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
      if (!match?.[1]) return 'invalid';
      return matches(match[1]) ? 'ok' : 'invalid';
    },

    matches,

    issueSession(nowMs) {
      const expiresAt = Math.floor(nowMs / 1000) + SESSION_SECONDS;
      return `${expiresAt}.${mac(expiresAt).toString('base64url')}`;
    },

    session(headers, nowMs) {
      const value = readCookie(headers.cookie, SESSION_COOKIE);
      const match = value ? /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(value) : null;
      if (!match?.[1] || !match[2]) return false;
      const expiresAt = Number(match[1]);
      if (expiresAt * 1000 <= nowMs) return false;
      // Compare the canonical encodings: base64url decoding ignores the last character's padding bits.
      const given = Buffer.from(match[2], 'utf8');
      const wanted = Buffer.from(mac(expiresAt).toString('base64url'), 'utf8');
      return given.length === wanted.length && timingSafeEqual(given, wanted);
    },
  };
}

/** Reads one cookie from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}
