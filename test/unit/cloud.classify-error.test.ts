import * as openapiCore from '@alicloud/openapi-core';
import { describe, expect, it } from 'vitest';
import { CloudError, classifyError, type FailureKind } from '../../src/cloud/index.js';
import { TagwardenError } from '../../src/errors.js';

const { ThrottlingError, ClientError, ServerError } = openapiCore;

/** What openapi-core 1.0.8 throws for an error response (see its doRequest). */
function sdkError(status: number, code: string, extra: Record<string, unknown> = {}): Error {
  const map = {
    statusCode: status,
    code,
    message: `code: ${status}, some message request id: req-1`,
    data: { Code: code, Message: 'some message', RequestId: 'req-1', statusCode: status },
    requestId: 'req-1',
    ...extra,
  };
  if (code.includes('Throttling')) return new ThrottlingError(map);
  return status >= 500 ? new ServerError(map) : new ClientError(map);
}

function nodeError(code: string, message = `connect ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

describe('classifyError: API codes from openapi-core errors', () => {
  const cases: [number, string, FailureKind][] = [
    [400, 'Throttling', 'throttled'],
    [400, 'Throttling.User', 'throttled'],
    [400, 'Throttling.Api', 'throttled'],
    [503, 'Throttling.Burst', 'throttled'],
    [503, 'ServiceUnavailable', 'transient'],
    [500, 'InternalError', 'transient'],
    [400, 'Conflict.Operation', 'transient'],
    [400, 'InvalidInstanceIds.NotFound', 'not-found'],
    [400, 'ResourceNotFound.InstanceId', 'not-found'],
    [404, 'InvalidAccessKeyId.NotFound', 'auth'],
    [400, 'InvalidAccessKeyId.Inactive', 'auth'],
    [403, 'SignatureDoesNotMatch', 'auth'],
    [400, 'IncompleteSignature', 'auth'],
    [403, 'Forbidden.RAM', 'auth'],
    [400, 'Forbidden.NoPermission', 'auth'],
    [403, 'Forbidden', 'auth'],
    [400, 'InvalidSecurityToken.Expired', 'auth'],
    [400, 'InvalidSecurityToken.Malformed', 'auth'],
    [400, 'IdempotentParameterMismatch', 'permanent'],
    [400, 'NumberExceed.Tags', 'permanent'],
    [400, 'NumberExceed.ResourceIds', 'permanent'],
    [400, 'Forbidden.TagKeys', 'permanent'],
    [400, 'Forbidden.TagKey.Duplicated', 'permanent'],
    [400, 'IllegalParam.TagKey', 'permanent'],
    [400, 'MissingParameter', 'permanent'],
    [400, 'InvalidParameter', 'permanent'],
    [400, 'BothEmpty.TagsAndResources', 'permanent'],
    [400, 'SomethingNobodyDocumented', 'permanent'],
    [502, 'BadGateway', 'transient'],
    [504, 'GatewayTimeout', 'transient'],
    [429, 'TooManyRequests', 'throttled'],
  ];
  it.each(cases)('HTTP %i %s -> %s', (status, code, kind) => {
    const failure = classifyError(sdkError(status, code));
    expect(failure).toMatchObject({ kind, code, httpStatus: status, requestId: 'req-1' });
    expect(failure.message).toContain(code);
    expect(failure.message).toContain('some message');
  });

  it('reads Retry-After from ThrottlingError.retryAfter (x-acs-retry-after, ms)', () => {
    expect(classifyError(sdkError(400, 'Throttling.User', { retryAfter: 1500 })).retryAfterMs).toBe(1500);
    expect(classifyError(sdkError(400, 'Throttling.User')).retryAfterMs).toBeUndefined();
  });

  it('ignores the literal "undefined" the SDK writes for a missing request id or code', () => {
    const err = new ServerError({ statusCode: 503, code: 'undefined', message: 'x', requestId: 'undefined', data: {} });
    const failure = classifyError(err);
    expect(failure).toMatchObject({ kind: 'transient', code: 'Http503', httpStatus: 503 });
    expect(failure.requestId).toBeUndefined();
  });
});

describe('classifyError: network, parse and credential failures', () => {
  it.each(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'EHOSTUNREACH', 'EAI_AGAIN'])('%s -> transient NetworkError', (errno) => {
    expect(classifyError(nodeError(errno))).toMatchObject({ kind: 'transient', code: 'NetworkError' });
  });

  it('socket hang up without a code is a NetworkError', () => {
    expect(classifyError(new Error('socket hang up'))).toMatchObject({ kind: 'transient', code: 'NetworkError' });
  });

  it('httpx timeouts and ETIMEDOUT are transient Timeout', () => {
    const read = Object.assign(new Error('ReadTimeout: 1000. POST /?Signature=abc failed.'), { name: 'RequestTimeoutError' });
    const connect = Object.assign(new Error('ConnectTimeout: Connect http://h/ failed.'), { name: 'RequestTimeoutError' });
    expect(classifyError(read)).toMatchObject({ kind: 'transient', code: 'Timeout' });
    expect(classifyError(connect)).toMatchObject({ kind: 'transient', code: 'Timeout' });
    expect(classifyError(nodeError('ETIMEDOUT'))).toMatchObject({ kind: 'transient', code: 'Timeout' });
  });

  it('a non-JSON body (HTML 502) surfacing as SyntaxError is transient BadResponse', () => {
    let parseError: unknown;
    try {
      JSON.parse('<html><body>502 Bad Gateway</body></html>');
    } catch (err) {
      parseError = err;
    }
    expect(classifyError(parseError)).toMatchObject({ kind: 'transient', code: 'BadResponse' });
  });

  it('credential provider failures are auth', () => {
    const chain = new Error('unable to get credentials from any of the providers in the chain: nope');
    expect(classifyError(chain)).toMatchObject({ kind: 'auth', code: 'CredentialsUnavailable' });
    const missing = new ClientError({ code: 'InvalidCredentials', message: 'Please set up the credentials correctly.' });
    expect(classifyError(missing)).toMatchObject({ kind: 'auth', code: 'InvalidCredentials' });
  });

  it('plain objects: body codes and bare statuses', () => {
    expect(classifyError({ Code: 'Throttling.User', statusCode: 400 })).toMatchObject({ kind: 'throttled' });
    expect(classifyError({ statusCode: 429, headers: { 'Retry-After': '2' } })).toMatchObject({
      kind: 'throttled',
      retryAfterMs: 2000,
    });
    expect(classifyError({ status: 502 })).toMatchObject({ kind: 'transient', code: 'Http502' });
    expect(classifyError({ statusCode: 400, data: { Code: 'ResourceNotFound.InstanceId' } })).toMatchObject({
      kind: 'not-found',
    });
    expect(classifyError({ code: 'Forbidden.RAM', statusCode: 403 })).toMatchObject({ kind: 'auth' });
    expect(classifyError({ statusCode: 401 })).toMatchObject({ kind: 'auth' });
  });

  it('anything unknown is permanent, never thrown itself', () => {
    expect(classifyError(undefined)).toMatchObject({ kind: 'permanent', code: 'Unknown' });
    expect(classifyError('boom')).toMatchObject({ kind: 'permanent' });
    expect(classifyError(new TypeError('x is not a function'))).toMatchObject({ kind: 'permanent', code: 'Unknown' });
  });
});

describe('CloudError', () => {
  it('carries the failure and a code that follows the kind', () => {
    const kinds: [FailureKind, string][] = [
      ['throttled', 'CLOUD_THROTTLED'],
      ['transient', 'CLOUD_TRANSIENT'],
      ['permanent', 'CLOUD_PERMANENT'],
      ['auth', 'CLOUD_AUTH'],
      ['not-found', 'CLOUD_NOT_FOUND'],
    ];
    for (const [kind, code] of kinds) {
      const err = new CloudError({ kind, code: 'X', message: 'X: m' }, { api: 'UnTagResources', region: 'cn-hangzhou' });
      expect(err).toBeInstanceOf(TagwardenError);
      expect(err.code).toBe(code);
      expect(err.failure.kind).toBe(kind);
      expect(err.message).toBe('UnTagResources cn-hangzhou: X: m');
      expect(err.details).toMatchObject({ kind, api: 'UnTagResources', region: 'cn-hangzhou' });
    }
    const wrapped = new CloudError({ kind: 'auth', code: 'A', message: 'A' });
    expect(classifyError(wrapped)).toBe(wrapped.failure);
  });
});

describe('secrets never reach a failure message', () => {
  const secret = 'sk-very-secret-value-123';
  const token = 'CAIS+sts/token==value';

  it('scrubs known secrets, signed query parameters and Authorization values', () => {
    const echo = sdkError(403, 'SignatureDoesNotMatch', {
      data: {
        Code: 'SignatureDoesNotMatch',
        Message:
          `secret ${secret} token ${encodeURIComponent(token)} url /?AccessKeyId=ak&Signature=c2lnbmF0dXJl&SecurityToken=abc ` +
          'Authorization: ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=host;x-acs-date,Signature=deadbeef',
      },
    });
    const failure = classifyError(echo, [secret, token]);
    for (const leaked of [secret, token, encodeURIComponent(token), 'c2lnbmF0dXJl', 'SecurityToken=abc', 'deadbeef']) {
      expect(failure.message).not.toContain(leaked);
    }
    expect(failure.message).toContain('[REDACTED]');
  });

  it('does not quote raw network error messages, which hold the signed URL', () => {
    const timeout = Object.assign(
      new Error(`ReadTimeout: 1000. POST /?AccessKeyId=ak&SecurityToken=${token}&Signature=zzz failed.`),
      { name: 'RequestTimeoutError' },
    );
    const failure = classifyError(timeout);
    expect(failure.message).not.toContain(token);
    expect(failure.message).not.toContain('zzz');
    expect(new CloudError(failure).message).not.toContain('zzz');
  });

  it('never attaches the raw SDK error as cause', () => {
    const err = new CloudError(classifyError(sdkError(500, 'InternalError')));
    expect(err.cause).toBeUndefined();
    expect(JSON.stringify(err.details)).not.toContain('data');
  });
});
