// Who tagwarden is, as ActionTrail sees it: the access key IDs its requests are signed with. Every replica
// records its keys in Redis before signing with them, so any replica recognises an event about any replica's
// call (STS keys of RRSA differ per pod and rotate; a static key is shared). The user agent is not used: any
// client can send `tagwarden/1`, and trusting it would let a tag writer hide its write from event enforcement.
import type { EventStore } from './store.js';

export interface OwnIdentityOptions {
  store: Pick<EventStore, 'rememberOwnKey'>;
  /** How long a key is remembered after it was last recorded (longer than an STS key lives). */
  ttlSeconds: number;
  now(): Date;
  onError(err: unknown): void;
}

/** A recorder for CloudHooks.signedWith: writes a key once per half TTL, and on every request until it landed. */
export function createOwnIdentityRecorder(options: OwnIdentityOptions): (accessKeyId: string) => Promise<void> {
  const recorded = new Map<string, number>();
  const refreshMs = (options.ttlSeconds * 1000) / 2;
  return async (accessKeyId) => {
    const nowMs = options.now().getTime();
    const at = recorded.get(accessKeyId);
    if (at !== undefined && nowMs - at < refreshMs) return;
    try {
      await options.store.rememberOwnKey(accessKeyId, options.ttlSeconds);
      // Bounded: STS keys rotate, so forget the oldest beyond a few dozen.
      recorded.delete(accessKeyId);
      recorded.set(accessKeyId, nowMs);
      if (recorded.size > 64) recorded.delete(recorded.keys().next().value as string);
    } catch (err) {
      options.onError(err);
    }
  };
}
