// The emulator's EventBridge-style webhook: an ActionTrail CloudEvent per successful TagResources call,
// redelivered when the receiver fails, duplicated on request, never for failed calls.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator, WEBHOOK_PATH, type RunningEmulator, type WebhookConfig } from '../../src/emulator/index.js';
import { eventually } from '../support/harness.js';
import { sdkCaller } from './emulator.support.js';

interface Received {
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** A receiver that answers 500 to the first `failFirst` POSTs, then 200. */
async function receiver(failFirst = 0): Promise<{ url: string; got: Received[]; attempts: () => number; close(): Promise<void> }> {
  const got: Received[] = [];
  let attempts = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      attempts += 1;
      if (attempts <= failFirst) {
        res.writeHead(500).end();
        return;
      }
      got.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/events`,
    got,
    attempts: () => attempts,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const FIXTURE = { resources: [{ id: 'pcc-w1', region: 'cn-hangzhou', tags: {} }, { id: 'pcc-w2', region: 'cn-hangzhou', tags: {} }] };
let emu: RunningEmulator | undefined;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await emu?.close();
  emu = undefined;
  for (const close of closers.splice(0)) await close();
});

async function start(webhook: WebhookConfig): Promise<RunningEmulator> {
  emu = await startEmulator({ fixture: FIXTURE, webhook });
  return emu;
}

describe('emulator webhook', () => {
  it('delivers one ActionTrail ApiCall CloudEvent per successful TagResources call, with the token header', async () => {
    const rx = await receiver();
    closers.push(rx.close);
    const e = await start({ urls: [rx.url], token: 'eb-token-0123456789' });
    const api = sdkCaller(e.url);
    const answer = await api.call('TagResources', { RegionId: 'cn-hangzhou', ResourceType: 'PeerConnection', ResourceId: ['pcc-w1', 'pcc-w2'], Tag: [{ Key: 'tmp-x', Value: 'v' }] });
    // A failed call (unknown ID) and a read produce no event.
    await api.fail('TagResources', { RegionId: 'cn-hangzhou', ResourceType: 'PeerConnection', ResourceId: ['pcc-nope'], Tag: [{ Key: 'a', Value: 'b' }] });
    await api.call('ListTagResources', { RegionId: 'cn-hangzhou', ResourceType: 'PeerConnection', ResourceId: ['pcc-w1'] });
    await eventually(async () => (rx.got.length >= 1 ? true : undefined), 10_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(rx.got).toHaveLength(1);
    const [event] = rx.got;
    expect(event?.headers['x-eventbridge-signature-token']).toBe('eb-token-0123456789');
    expect(event?.body).toMatchObject({
      specversion: '1.0',
      source: 'acs.actiontrail',
      type: 'actiontrail:ActionTrail:ApiCall',
      aliyunregionid: 'cn-hangzhou',
      data: {
        eventName: 'TagResources',
        eventType: 'ApiCall',
        acsRegion: 'cn-hangzhou',
        requestId: answer['RequestId'],
        userIdentity: { accessKeyId: 'tagwarden-test' },
        requestParameters: { RegionId: 'cn-hangzhou', 'ResourceId.1': 'pcc-w1', 'ResourceId.2': 'pcc-w2', 'Tag.1.Key': 'tmp-x', 'Tag.1.Value': 'v' },
        referencedResources: { 'ACS::VPC::PeerConnection': ['pcc-w1', 'pcc-w2'] },
      },
    });
    expect(typeof event?.body['id']).toBe('string');
    expect(Date.parse(String(event?.body['time']))).toBeGreaterThan(Date.now() - 60_000);
    const stats = (await (await fetch(`${e.url}${WEBHOOK_PATH}`)).json()) as { config: { token: string }; stats: { events: number; delivered: number } };
    expect(stats.config.token).toBe('set');
    expect(stats.stats).toMatchObject({ events: 1, delivered: 1 });
  });

  it('redelivers the same event after failures, and duplicates on request', async () => {
    const rx = await receiver(3);
    closers.push(rx.close);
    const e = await start({ urls: [rx.url], retryBaseMs: 10, duplicates: 1 });
    await sdkCaller(e.url).call('TagResources', { RegionId: 'cn-hangzhou', ResourceType: 'PeerConnection', ResourceId: ['pcc-w1'], Tag: [{ Key: 'k', Value: 'v' }] });
    await eventually(async () => (rx.got.length >= 2 ? true : undefined), 10_000);
    expect(rx.attempts()).toBe(5);
    expect(rx.got[0]?.body['id']).toBe(rx.got[1]?.body['id']);
  });

  it('drops an event after maxAttempts (dead letter) and can be reconfigured at run time', async () => {
    const e = await start({ urls: ['http://127.0.0.1:9/unreachable'], retryBaseMs: 5, maxAttempts: 3 });
    await sdkCaller(e.url).call('TagResources', { RegionId: 'cn-hangzhou', ResourceType: 'PeerConnection', ResourceId: ['pcc-w1'], Tag: [{ Key: 'k', Value: 'v' }] });
    const dead = await eventually(async () => {
      const body = (await (await fetch(`${e.url}${WEBHOOK_PATH}`)).json()) as { stats: { deadLettered: number; failedAttempts: number } };
      return body.stats.deadLettered === 1 ? body.stats : undefined;
    }, 10_000);
    expect(dead.failedAttempts).toBe(3);
    const bad = await fetch(`${e.url}${WEBHOOK_PATH}`, { method: 'PUT', body: JSON.stringify({ urls: ['ftp://x'] }) });
    expect(bad.status).toBe(400);
    const rx = await receiver();
    closers.push(rx.close);
    const ok = await fetch(`${e.url}${WEBHOOK_PATH}`, { method: 'PUT', body: JSON.stringify({ urls: [rx.url], actions: ['TagResources', 'UnTagResources'] }) });
    expect(ok.status).toBe(200);
    await sdkCaller(e.url).call('UnTagResources', { RegionId: 'cn-hangzhou', ResourceType: 'PeerConnection', ResourceId: ['pcc-w1'], TagKey: ['k'] });
    await eventually(async () => (rx.got.length >= 1 ? true : undefined), 10_000);
    expect((rx.got[0]?.body['data'] as { eventName: string }).eventName).toBe('UnTagResources');
  });
});
