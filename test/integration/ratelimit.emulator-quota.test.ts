// The limiter plugged into the cloud client's before-hook keeps several concurrent callers under the
// emulator's quota, which counts in fixed epoch-aligned windows like the real gateway.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCloudClient, type CloudApi, type CloudHooks } from '../../src/cloud/index.js';
import { createEmulatorAdmin, startEmulator, type EmulatorAdmin, type RunningEmulator } from '../../src/emulator/index.js';
import { DOCUMENTED_QUOTAS } from '../../src/model.js';
import { createRateLimiter } from '../../src/ratelimit/index.js';

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const REGION = 'cn-hangzhou';
const ID = 'pcc-ratelimit00000000001';
const EMULATOR_QUOTA = 5;

let emulator: RunningEmulator;
let admin: EmulatorAdmin;
const connections: Redis[] = [];
const prefix = `tw-test-rl-emu-${randomUUID()}`;

beforeAll(async () => {
  emulator = await startEmulator({
    fixture: { resources: [{ id: ID, region: REGION, tags: { owner: 'x' }, vpcId: 'vpc-rl1', acceptingVpcId: 'vpc-rl2' }] },
    quotas: { UnTagResources: EMULATOR_QUOTA },
    quotaWindowMs: 1000,
  });
  admin = createEmulatorAdmin(emulator.url);
});

afterAll(async () => {
  const first = connections[0];
  if (first) {
    const keys = await first.keys(`${prefix}:*`);
    if (keys.length > 0) await first.del(...keys);
  }
  await Promise.all(connections.map((c) => c.quit()));
  await emulator.close();
});

function client(hooks?: CloudHooks): CloudApi {
  return createCloudClient(
    {
      endpoint: emulator.url,
      connectTimeoutMs: 2000,
      readTimeoutMs: 5000,
      signatureVersion: 'v3',
      credentials: { accessKeyId: 'tagwarden-test', accessKeySecret: 'tagwarden-test-secret' },
    },
    hooks,
  );
}

/** `callers` clients in parallel, `each` UnTagResources calls apiece; returns the emulator's codes. */
async function hammer(clients: readonly CloudApi[], each: number): Promise<string[]> {
  await admin.clearCalls();
  // Start from empty quota counters, whatever the previous test spent in the current window.
  await admin.setQuotas({ quotas: { UnTagResources: EMULATOR_QUOTA }, windowMs: 1000 });
  await Promise.all(
    clients.map(async (api) => {
      for (let i = 0; i < each; i++) {
        await api
          .untagResources({ region: REGION, resourceIds: [ID], tagKeys: ['absent'], all: false, clientToken: `rl-${randomUUID()}` })
          .catch(() => undefined);
      }
    }),
  );
  return (await admin.getCalls({ action: 'UnTagResources' })).calls.map((c) => c.code);
}

describe('rate limiter in front of the emulator', () => {
  it('without a limiter, concurrent callers get throttled (the test can fail)', async () => {
    const codes = await hammer([client(), client(), client()], 4);
    expect(codes).toContain('Throttling.User');
  });

  it('with the shared limiter as before-hook, three callers on three connections are never throttled', async () => {
    const hooksFor = (): CloudHooks => {
      const redis = new Redis(REDIS_URL);
      connections.push(redis);
      const limiter = createRateLimiter(redis, {
        prefix,
        account: 'default',
        quotas: { ...DOCUMENTED_QUOTAS, UnTagResources: EMULATOR_QUOTA },
        windowMs: 1000,
        // 3 per second, evenly spaced, leaves two calls of slack per window for delivery jitter.
        fraction: 0.6,
        burst: 1,
      });
      return { before: (api, region) => limiter.acquire(region, api).then(() => undefined) };
    };
    const codes = await hammer([client(hooksFor()), client(hooksFor()), client(hooksFor())], 4);
    expect(codes).toHaveLength(12);
    expect(codes).toEqual(Array<string>(12).fill('OK'));
  });
});
