// The one place that maps a classified cloud failure to queue behaviour, with a reason that says what to fix.
import { UnrecoverableError } from 'bullmq';
import type { CloudFailure } from '../cloud/types.js';

/** What the worker does with a failed call. Each branch is counted by the caller. */
export type FailureAction =
  | { kind: 'rate-limit'; delayMs: number }
  | { kind: 'retry'; error: Error }
  | { kind: 'fail'; error: UnrecoverableError; auth: boolean };

const FIXES: Record<string, string> = {
  IdempotentParameterMismatch:
    'the ClientToken was already used with other parameters; the batch payload changed after it was first sent. Re-enqueue it under a new batchId',
  'NumberExceed.Tags': 'more than 20 tag keys in one call; split the job (the producer does this for you)',
  'NumberExceed.ResourceIds': 'more than 20 resource IDs in one call; split the job (the producer does this for you)',
  'Forbidden.TagKeys': 'the API refuses to remove this tag key (a reserved or system key); drop it from the policy or request',
  'InvalidInstanceType.NotFound': 'ResourceType must be PeerConnection',
};

/** A human reason for a permanent failure, naming the code and what to fix. */
export function permanentReason(failure: CloudFailure): string {
  const fix =
    FIXES[failure.code] ??
    (failure.code.startsWith('IllegalParam') || failure.code.startsWith('Invalid') || failure.code.startsWith('Missing')
      ? 'a parameter was rejected; check the resource IDs and tag keys of the job'
      : 'the API refused the call; it will not succeed when retried');
  return `UnTagResources failed with ${failure.code}${failure.httpStatus ? ` (HTTP ${failure.httpStatus})` : ''}: ${fix}. ${failure.message}`;
}

/** Maps a failure kind to queue behaviour: throttled -> rate limit, transient -> backoff, others -> fail now. */
export function actionFor(failure: CloudFailure, throttleDelayMs: number): FailureAction {
  switch (failure.kind) {
    case 'throttled':
      return { kind: 'rate-limit', delayMs: Math.max(throttleDelayMs, failure.retryAfterMs ?? 0) };
    case 'transient':
    case 'not-found':
      // not-found reaches here only when resolving the deleted IDs failed too: the next attempt resolves again.
      return { kind: 'retry', error: new Error(`${failure.code}: ${failure.message}`) };
    case 'auth':
      return {
        kind: 'fail',
        auth: true,
        error: new UnrecoverableError(
          `authentication failed with ${failure.code}: check the credentials (ALIBABA_CLOUD_* or RRSA) and that the RAM policy in deploy/ram-policy.json is attached. ${failure.message}`,
        ),
      };
    case 'permanent':
      return { kind: 'fail', auth: false, error: new UnrecoverableError(permanentReason(failure)) };
  }
}
