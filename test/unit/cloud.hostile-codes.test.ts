// An endpoint that echoes the Authorization header or the STS token in its error Code (or RequestId) must not
// put them into the failure: codes are bounded to [A-Za-z0-9._-]{1,64} (else `other`), messages are redacted.
import * as openapiCore from '@alicloud/openapi-core';
import { describe, expect, it } from 'vitest';
import { classifyError } from '../../src/cloud/index.js';

const { ClientError } = openapiCore;
const STS_TOKEN = 'CAIS' + 'x'.repeat(40) + 'StsTokenTail==';
const AUTHORIZATION = 'ACS3-HMAC-SHA256 Credential=LTAI5tEchoedKeyId,SignedHeaders=host;x-acs-date,Signature=0123456789abcdef0123456789abcdef';

function echoing(code: string, message = 'echo', requestId = 'req-1'): Error {
  return new ClientError({ statusCode: 400, code, message: `code: 400, ${message}`, data: { Code: code, Message: message, RequestId: requestId, statusCode: 400 }, requestId });
}

describe('classifyError: reflected credentials in the error code', () => {
  const hostile: Array<[string, string]> = [
    ['the Authorization header', AUTHORIZATION],
    ['the STS token', STS_TOKEN + ' and more'],
    ['a code of 65 characters', 'A'.repeat(65)],
    ['control characters', 'Bad\u001b[31mCode\u0007'],
    ['a newline', 'Forbidden\nx-acs-security-token: ' + STS_TOKEN],
    ['an empty-looking code', ' '],
  ];
  for (const [what, code] of hostile) {
    it(`${what} becomes 'other' and appears nowhere`, () => {
      const failure = classifyError(echoing(code, `you sent ${code}`, code), [STS_TOKEN]);
      if (code.trim() !== '') expect(failure.code).toBe('other');
      const text = JSON.stringify(failure);
      expect(text).not.toContain(STS_TOKEN);
      expect(text).not.toContain('Signature=0123456789abcdef');
      // eslint-disable-next-line no-control-regex
      expect(failure.message).not.toMatch(/[\u0000-\u001f]/);
      expect(failure.requestId === undefined || /^[A-Za-z0-9._-]{1,64}$/.test(failure.requestId)).toBe(true);
    });
  }

  it('ordinary codes of up to 64 characters are kept, and still classified', () => {
    expect(classifyError(echoing('Throttling.User')).code).toBe('Throttling.User');
    expect(classifyError(echoing('Throttling.User')).kind).toBe('throttled');
    const long = 'Forbidden.' + 'A'.repeat(54);
    expect(classifyError(echoing(long)).code).toBe(long);
    expect(classifyError(echoing('InvalidAccessKeyId.NotFound')).kind).toBe('auth');
  });
});
