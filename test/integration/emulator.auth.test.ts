import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMULATOR_ERRORS, createEmulatorAdmin, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { TEST_KEY, sdkCaller, sendV2, sendV3 } from './emulator.support.js';

const UUID = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/;
const LIST = { RegionId: 'cn-hangzhou', ResourceType: 'PeerConnection', 'ResourceId.1': 'pcc-nothing' };
const MINUTE = 60_000;

/** An STS credential (key, secret and token), one that expired, and the plain default key. */
const STS_KEY = { accessKeyId: 'STS.tagwarden-session', accessKeySecret: 'sts-session-secret', securityToken: 'CAIS-sts-token-for-test' };
const EXPIRED_KEY = { accessKeyId: 'STS.tagwarden-expired', accessKeySecret: 'sts-expired-secret', securityToken: 'CAIS-expired-token', expiresAt: Date.now() - MINUTE };

let emu: RunningEmulator;
beforeAll(async () => {
  emu = await startEmulator({ generate: { count: 30, seed: 1 }, credentials: [TEST_KEY, STS_KEY, EXPIRED_KEY] });
});
afterAll(async () => {
  await emu.close();
});

describe.each([
  { name: 'V3', v2: false, send: sendV3 },
  { name: 'V2', v2: true, send: sendV2 },
])('emulator signature checks ($name)', ({ v2, send }) => {
  it('accepts a request signed by the official SDK, with a UUID RequestId', async () => {
    const body = await sdkCaller(emu.url, { v2 }).call('ListVpcPeerConnections', {}, { RegionId: 'cn-hangzhou' });
    expect(body['RequestId']).toMatch(UUID);
    expect((body['VpcPeerConnects'] as unknown[]).length).toBe(10);
  });

  it('accepts GET as well as POST', async () => {
    const body = await sdkCaller(emu.url, { v2, method: 'GET' }).call('ListVpcPeerConnections', { RegionId: 'cn-shanghai', MaxResults: 3 });
    expect((body['VpcPeerConnects'] as unknown[]).length).toBe(3);
  });

  it('accepts STS credentials with their own security token', async () => {
    const body = await sdkCaller(emu.url, { v2, ...STS_KEY }).call('ListVpcPeerConnections', {}, { RegionId: 'cn-beijing' });
    expect(body['TotalCount']).toBe(10);
  });

  it('checks the security token of STS credentials: missing, wrong, expired, or sent with a plain key', async () => {
    const { securityToken: _token, ...withoutToken } = STS_KEY;
    const missing = await sdkCaller(emu.url, { v2, ...withoutToken }).fail('ListVpcPeerConnections', {}, { RegionId: 'cn-beijing' });
    expect([missing.statusCode, missing.code]).toEqual([400, 'MissingSecurityToken']);
    const wrong = await sdkCaller(emu.url, { v2, ...STS_KEY, securityToken: 'CAIS-someone-elses-token' }).fail('ListVpcPeerConnections', {}, { RegionId: 'cn-beijing' });
    expect([wrong.statusCode, wrong.code]).toEqual([400, 'InvalidSecurityToken.MismatchWithAccessKey']);
    const { expiresAt: _at, ...expired } = EXPIRED_KEY;
    const late = await sdkCaller(emu.url, { v2, ...expired }).fail('ListVpcPeerConnections', {}, { RegionId: 'cn-beijing' });
    expect([late.statusCode, late.code]).toEqual([400, 'InvalidSecurityToken.Expired']);
    const plainWithToken = await sdkCaller(emu.url, { v2, securityToken: 'CAIS-sts-token-for-test' }).fail('ListVpcPeerConnections', {}, { RegionId: 'cn-beijing' });
    expect(plainWithToken.code).toBe('InvalidSecurityToken.MismatchWithAccessKey');
    // A wrong secret is still a signature failure first: the token is only looked at for an authentic request.
    const badSecret = await sdkCaller(emu.url, { v2, ...STS_KEY, accessKeySecret: 'nope' }).fail('ListVpcPeerConnections', {}, { RegionId: 'cn-beijing' });
    expect(badSecret.code).toBe('SignatureDoesNotMatch');
  });

  it('answers a wrong secret with 403 SignatureDoesNotMatch and the documented error body', async () => {
    const err = await sdkCaller(emu.url, { v2, accessKeySecret: 'not-the-secret' }).fail('ListVpcPeerConnections', {}, { RegionId: 'cn-hangzhou' });
    expect(err.code).toBe('SignatureDoesNotMatch');
    expect(err.statusCode).toBe(403);
    expect(EMULATOR_ERRORS.SignatureDoesNotMatch).toBe(403);
    expect(Object.keys(err.data ?? {})).toEqual(expect.arrayContaining(['RequestId', 'HostId', 'Code', 'Message', 'Recommend']));
    expect(err.data?.['RequestId']).toMatch(UUID);
  });

  it('answers an unknown AccessKeyId with 404 InvalidAccessKeyId.NotFound', async () => {
    const err = await sdkCaller(emu.url, { v2, accessKeyId: 'nobody' }).fail('ListVpcPeerConnections', {}, { RegionId: 'cn-hangzhou' });
    expect(err.code).toBe('InvalidAccessKeyId.NotFound');
    expect(err.statusCode).toBe(404);
  });

  it('answers an unknown action with 404 InvalidAction.NotFound', async () => {
    const err = await sdkCaller(emu.url, { v2 }).fail('DescribeEverything', { RegionId: 'cn-hangzhou' });
    expect(err.code).toBe('InvalidAction.NotFound');
    expect(err.statusCode).toBe(404);
  });

  it('answers another API version with 400 InvalidVersion', async () => {
    const res = await send(emu.url, { action: 'ListTagResources', params: LIST, version: '2016-04-28' });
    expect(res.status).toBe(400);
    expect(res.body['Code']).toBe('InvalidVersion');
  });

  it('refuses a timestamp more than 15 minutes off, either way, and accepts 14 minutes', async () => {
    for (const offset of [-16 * MINUTE, 16 * MINUTE]) {
      const res = await send(emu.url, { action: 'ListTagResources', params: LIST, timestamp: Date.now() + offset });
      expect(res.status).toBe(400);
      expect(res.body['Code']).toBe('InvalidTimeStamp.Expired');
    }
    const ok = await send(emu.url, { action: 'ListTagResources', params: LIST, timestamp: Date.now() - 14 * MINUTE });
    // The request is authentic; it then fails on the business check (unknown ID), which proves it got past the gateway.
    expect(ok.body['Code']).toBe('InvalidInstanceIds.NotFound');
  });

  it('refuses a reused nonce with 400 SignatureNonceUsed', async () => {
    const nonce = `nonce-${Math.random()}`;
    const params = { RegionId: 'cn-hangzhou', ResourceType: 'PeerConnection', 'Tag.1.Key': 'env' };
    const first = await send(emu.url, { action: 'ListTagResources', params, nonce });
    expect(first.status).toBe(200);
    const second = await send(emu.url, { action: 'ListTagResources', params, nonce });
    expect(second.status).toBe(400);
    expect(second.body['Code']).toBe('SignatureNonceUsed');
  });

  it('refuses a badly signed crafted request with 403, and a crafted request with another key id with 404', async () => {
    const bad = await send(emu.url, { action: 'ListTagResources', params: LIST, accessKeySecret: 'wrong' });
    expect([bad.status, bad.body['Code']]).toEqual([403, 'SignatureDoesNotMatch']);
    const unknown = await send(emu.url, { action: 'ListTagResources', params: LIST, accessKeyId: 'ghost' });
    expect([unknown.status, unknown.body['Code']]).toEqual([404, 'InvalidAccessKeyId.NotFound']);
  });
});

describe('emulator signature checks (request shape)', () => {
  it('refuses a V3 body that does not match x-acs-content-sha256', async () => {
    const res = await sendV3(emu.url, { action: 'ListTagResources', params: LIST, sendBody: 'RegionId=cn-shanghai&ResourceType=PeerConnection&ResourceId.1=pcc-x' });
    expect(res.status).toBe(403);
    expect(res.body['Code']).toBe('SignatureDoesNotMatch');
  });

  it('requires host, content-type and every x-acs-* header sent to be signed', async () => {
    const params = { RegionId: 'cn-hangzhou', ResourceType: 'PeerConnection', 'Tag.1.Key': 'env' };
    const signedAll = await sendV3(emu.url, { action: 'ListTagResources', params, extraHeaders: { 'x-acs-credentials-provider': 'static_ak' } });
    expect(signedAll.status).toBe(200);
    for (const unsigned of ['host', 'content-type', 'x-acs-credentials-provider', 'x-acs-action', 'x-acs-date']) {
      const res = await sendV3(emu.url, { action: 'ListTagResources', params, extraHeaders: { 'x-acs-credentials-provider': 'static_ak' }, unsigned: [unsigned] });
      expect([unsigned, res.status, res.body['Code']]).toEqual([unsigned, 400, 'IncompleteSignature']);
      expect(res.body['Message']).toContain(unsigned);
    }
    // An x-acs-security-token that is not signed could be swapped in transit.
    const token = await sendV3(emu.url, {
      action: 'ListTagResources', params, ...STS_KEY,
      extraHeaders: { 'x-acs-security-token': STS_KEY.securityToken }, unsigned: ['x-acs-security-token'],
    });
    expect([token.status, token.body['Code']]).toEqual([400, 'IncompleteSignature']);
    const tokenSigned = await sendV3(emu.url, { action: 'ListTagResources', params, ...STS_KEY, extraHeaders: { 'x-acs-security-token': STS_KEY.securityToken } });
    expect(tokenSigned.status).toBe(200);
  });

  it('names every unsigned header of a flood of them in one answer', async () => {
    const params = { RegionId: 'cn-hangzhou', ResourceType: 'PeerConnection', 'Tag.1.Key': 'env' };
    const flood = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`x-acs-extra-${String(i).padStart(2, '0')}`, 'x'.repeat(100)]));
    const res = await sendV3(emu.url, { action: 'ListTagResources', params, extraHeaders: flood, unsigned: Object.keys(flood) });
    expect([res.status, res.body['Code']]).toEqual([400, 'IncompleteSignature']);
    expect(res.body['Message']).toContain('x-acs-extra-00');
    expect(res.body['Message']).toContain('x-acs-extra-59');
  });

  it('refuses a malformed timestamp with InvalidTimeStamp.Format', async () => {
    const res = await fetch(`${emu.url}/?Action=ListTagResources&Version=2022-01-01&AccessKeyId=${TEST_KEY.accessKeyId}` +
      '&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce=n1&Timestamp=yesterday&Signature=x', { method: 'POST' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Record<string, unknown>)['Code']).toBe('InvalidTimeStamp.Format');
  });

  it('asks for the missing parameter by name when a request is unsigned or has no action', async () => {
    const unsigned = await fetch(`${emu.url}/?Action=ListTagResources&Version=2022-01-01`, { method: 'POST' });
    const unsignedBody = (await unsigned.json()) as Record<string, string>;
    expect([unsigned.status, unsignedBody['Code']]).toEqual([400, 'MissingParameter']);
    expect(unsignedBody['Message']).toContain('AccessKeyId');
    const noAction = await fetch(`${emu.url}/`, { method: 'POST' });
    const noActionBody = (await noAction.json()) as Record<string, string>;
    expect(noActionBody['Code']).toBe('MissingParameter');
    expect(noActionBody['Message']).toContain('Action');
    expect(noActionBody['RequestId']).toMatch(UUID);
  });

  it('records failed authentications in the call log, never with a signature parameter', async () => {
    const admin = createEmulatorAdmin(emu.url);
    const since = Math.max(0, ...(await admin.getCalls()).calls.map((c) => c.seq));
    await sdkCaller(emu.url, { v2: true, accessKeySecret: 'nope' }).fail('ListTagResources', LIST);
    const { calls } = await admin.getCalls({ since });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ action: 'ListTagResources', code: 'SignatureDoesNotMatch', status: 403, signature: 'v2', accessKeyId: TEST_KEY.accessKeyId, applied: false });
    expect(Object.keys(calls[0]?.params ?? {})).not.toContain('Signature');
    expect(Object.keys(calls[0]?.params ?? {})).not.toContain('AccessKeyId');
  });
});
