import { describe, expect, it } from 'vitest';
import { Authenticator } from '../../src/emulator/auth.js';
import {
  EMPTY_BODY_SHA256, parseV3Authorization, percentEncode, sha256Hex, v2CanonicalQuery, v2Signature, v2StringToSign,
  v3CanonicalRequest, v3Signature, v3StringToSign, type V3RequestParts,
} from '../../src/emulator/signature.js';

// Official vectors (reference §3.3).
const V3_VECTOR: V3RequestParts = {
  method: 'POST',
  path: '/',
  query: { ImageId: 'win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd', RegionId: 'cn-shanghai' },
  headers: {
    host: 'ecs.cn-shanghai.aliyuncs.com',
    'x-acs-action': 'RunInstances',
    'x-acs-version': '2014-05-26',
    'x-acs-date': '2023-10-26T10:22:32Z',
    'x-acs-signature-nonce': '3156853299f313e23d1673dc12e1703d',
    'x-acs-content-sha256': EMPTY_BODY_SHA256,
  },
  signedHeaders: ['host', 'x-acs-action', 'x-acs-content-sha256', 'x-acs-date', 'x-acs-signature-nonce', 'x-acs-version'],
  hashedPayload: EMPTY_BODY_SHA256,
};
const V3_HASHED_CANONICAL = '7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259';
const V3_SIGNATURE = '06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0';

const V2_PARAMS = {
  AccessKeyId: 'testid',
  Action: 'DescribeDedicatedHosts',
  Format: 'JSON',
  RegionId: 'cn-beijing',
  SignatureMethod: 'HMAC-SHA1',
  SignatureNonce: 'edb2b34af0af9a6d14deaf7c1a5315eb',
  SignatureVersion: '1.0',
  Timestamp: '2023-03-13T08:34:30Z',
  Version: '2014-05-26',
};
const V2_SIGNATURE = '9NaGiOspFP5UPcwX8Iwt2YJXXuk=';

describe('emulator signatures: official test vectors', () => {
  it('reproduces the V3 canonical request hash and signature byte for byte', () => {
    const canonical = v3CanonicalRequest(V3_VECTOR);
    expect(canonical).toBe(
      [
        'POST',
        '/',
        'ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai',
        'host:ecs.cn-shanghai.aliyuncs.com\nx-acs-action:RunInstances\nx-acs-content-sha256:' + EMPTY_BODY_SHA256 +
          '\nx-acs-date:2023-10-26T10:22:32Z\nx-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\nx-acs-version:2014-05-26\n',
        'host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version',
        EMPTY_BODY_SHA256,
      ].join('\n'),
    );
    expect(sha256Hex(canonical)).toBe(V3_HASHED_CANONICAL);
    expect(v3StringToSign(canonical)).toBe(`ACS3-HMAC-SHA256\n${V3_HASHED_CANONICAL}`);
    expect(v3Signature(V3_VECTOR, 'YourAccessKeySecret')).toBe(V3_SIGNATURE);
  });

  it('sorts signed headers itself: the order in SignedHeaders does not change the result', () => {
    expect(v3Signature({ ...V3_VECTOR, signedHeaders: [...V3_VECTOR.signedHeaders].reverse() }, 'YourAccessKeySecret')).toBe(V3_SIGNATURE);
    expect(v3Signature(V3_VECTOR, 'AnotherSecret')).not.toBe(V3_SIGNATURE);
  });

  it('reproduces the V2 signature byte for byte, and differs for POST', () => {
    expect(v2Signature('GET', V2_PARAMS, 'testsecret')).toBe(V2_SIGNATURE);
    expect(v2Signature('GET', { ...V2_PARAMS, Signature: 'ignored' }, 'testsecret')).toBe(V2_SIGNATURE);
    expect(v2StringToSign('GET', V2_PARAMS).startsWith('GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeDedicatedHosts')).toBe(true);
    expect(v2Signature('POST', V2_PARAMS, 'testsecret')).not.toBe(V2_SIGNATURE);
  });

  it('accepts both vectors through the verifier at the vectors own time', () => {
    const v3 = new Authenticator([{ accessKeyId: 'YourAccessKeyId', accessKeySecret: 'YourAccessKeySecret' }], 60_000, () => Date.parse('2023-10-26T10:22:40Z'));
    const authorization = `ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=${V3_VECTOR.signedHeaders.join(';')},Signature=${V3_SIGNATURE}`;
    const v3Request = {
      method: 'POST', path: '/', query: V3_VECTOR.query, body: Buffer.alloc(0), params: V3_VECTOR.query,
      headers: { ...V3_VECTOR.headers, authorization },
    };
    expect(v3.verify(v3Request)).toEqual({ accessKeyId: 'YourAccessKeyId', signature: 'v3' });
    // The same nonce a second time is refused.
    expect(() => v3.verify(v3Request)).toThrow(expect.objectContaining({ code: 'SignatureNonceUsed' }));

    const v2 = new Authenticator([{ accessKeyId: 'testid', accessKeySecret: 'testsecret' }], 60_000, () => Date.parse('2023-03-13T08:35:00Z'));
    const params = { ...V2_PARAMS, Signature: V2_SIGNATURE };
    expect(v2.verify({ method: 'GET', path: '/', query: params, body: Buffer.alloc(0), params, headers: {} })).toEqual({ accessKeyId: 'testid', signature: 'v2' });
    const tampered = { ...params, RegionId: 'cn-hangzhou' };
    expect(() => v2.verify({ method: 'GET', path: '/', query: tampered, body: Buffer.alloc(0), params: tampered, headers: {} }))
      .toThrow(expect.objectContaining({ code: 'SignatureDoesNotMatch', status: 403 }));
  });
});

describe('emulator signatures: encoding and parsing', () => {
  it('percent-encodes as RFC 3986 with uppercase hex, %20 for space, %2A for *, ~ kept', () => {
    expect(percentEncode("a b*~!'()/+=&é")).toBe('a%20b%2A~%21%27%28%29%2F%2B%3D%26%C3%A9');
    expect(v2CanonicalQuery({ b: '2', a: 'x y', 'TagKey.1': 'k*' })).toBe('TagKey.1=k%2A&a=x%20y&b=2');
  });

  it('parses the Authorization header and refuses malformed ones', () => {
    expect(parseV3Authorization('ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=host;X-Acs-Date,Signature=abc')).toEqual({
      algorithm: 'ACS3-HMAC-SHA256',
      accessKeyId: 'ak',
      signedHeaders: ['host', 'x-acs-date'],
      signature: 'abc',
    });
    expect(parseV3Authorization('ACS3-HMAC-SHA256 Credential=ak,Signature=abc')).toBeUndefined();
    expect(parseV3Authorization('garbage')).toBeUndefined();
  });
});
