// Bearer-token and dashboard-session checks. The token is compared in constant time and never logged or echoed.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** Name of the dashboard session cookie. */
export const SESSION_COOKIE = 'tagwarden_admin';
/** How long a dashboard login lasts. */
export const SESSION_SECONDS = 12 * 3600;

export type BearerResult = 'ok' | 'missing' | 'invalid';

export interface Authenticator {
  /** Checks `Authorization: Bearer <token>`. */
  bearer(headers: IncomingHttpHeaders): BearerResult;
  /** True when `candidate` is the token (constant time). */
  matches(candidate: string): boolean;
}

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** Builds the checks for one token. Hashing both sides first makes the comparison length-independent. */
export function createAuthenticator(token: string): Authenticator {
  const expected = digest(token);
  const matches = (candidate: string): boolean => timingSafeEqual(digest(candidate), expected);

  return {
    bearer(headers) {
      const header = headers.authorization;
      if (!header) return 'missing';
      const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
      if (!match?.[1]) return 'invalid';
      return matches(match[1]) ? 'ok' : 'invalid';
    },

    matches,
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
