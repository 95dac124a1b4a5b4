import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { actionFor, jitteredBackoff } from '../../src/worker/index.js';
import type { CloudFailure } from '../../src/cloud/index.js';

const failure = (kind: CloudFailure['kind'], code: string, extra: Partial<CloudFailure> = {}): CloudFailure => ({ kind, code, message: 'm', ...extra });

describe('failure table', () => {
  it('maps each kind to one queue behaviour', () => {
    expect(actionFor(failure('throttled', 'Throttling.User'), 1000)).toEqual({ kind: 'rate-limit', delayMs: 1000 });
    expect(actionFor(failure('throttled', 'Throttling', { retryAfterMs: 5000 }), 1000)).toEqual({ kind: 'rate-limit', delayMs: 5000 });
    expect(actionFor(failure('transient', 'ServiceUnavailable'), 1000).kind).toBe('retry');
    const permanent = actionFor(failure('permanent', 'IdempotentParameterMismatch'), 1000);
    expect(permanent.kind).toBe('fail');
    if (permanent.kind === 'fail') {
      expect(permanent.error).toBeInstanceOf(UnrecoverableError);
      expect(permanent.error.message).toMatch(/IdempotentParameterMismatch.*new batchId/);
      expect(permanent.auth).toBe(false);
    }
    const auth = actionFor(failure('auth', 'Forbidden.RAM'), 1000);
    expect(auth.kind === 'fail' && auth.auth && /RAM policy/.test(auth.error.message)).toBe(true);
  });

  it('backs off exponentially with full jitter, capped', () => {
    const max = jitteredBackoff({ baseMs: 100, maxMs: 1000 }, () => 0.999999);
    expect([1, 2, 3, 4, 5, 10].map(max)).toEqual([99, 199, 399, 799, 999, 999]);
    const min = jitteredBackoff({ baseMs: 100, maxMs: 1000 }, () => 0);
    expect(min(7)).toBe(0);
  });
});
