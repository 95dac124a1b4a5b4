import { describe, expect, it } from 'vitest';
import { describeConfig, loadConfig } from '../../src/config/index.js';
import { TagwardenError } from '../../src/errors.js';
import {
  RedisUrlError, SCAN_QUEUE, accountTag, describeTopology, parseRedisTopology, redactRedisUrl, runTag, topologySecrets, untagQueueName,
} from '../../src/queue/index.js';
import { keySlot } from '../support/key-slot.js';

describe('Redis topology URLs', () => {
  it('keeps redis:// and rediss:// as one server', () => {
    expect(parseRedisTopology('redis://127.0.0.1:6379')).toEqual({ kind: 'standalone', url: 'redis://127.0.0.1:6379' });
    expect(parseRedisTopology('rediss://:pw@r-bp1.redis.rds.aliyuncs.com:6379/2').kind).toBe('standalone');
  });

  it('reads Cluster seed nodes, credentials and TLS', () => {
    const t = parseRedisTopology('rediss+cluster://tw:p%40ss%3Aword@10.0.0.1:7000,node-2.example:7001,[::1]:7002');
    expect(t).toEqual({
      kind: 'cluster', tls: true, username: 'tw', password: 'p@ss:word',
      nodes: [{ host: '10.0.0.1', port: 7000 }, { host: 'node-2.example', port: 7001 }, { host: '::1', port: 7002 }],
    });
    expect(describeTopology(t)).toBe('cluster 10.0.0.1:7000,node-2.example:7001,[::1]:7002 tls');
    expect(topologySecrets(t)).toEqual(['p@ss:word']);
  });

  it('reads Sentinels, the master name, the database and the Sentinel password', () => {
    const t = parseRedisTopology('redis+sentinel://:master-pw@s1:26379,s2:26379/my.master/3?sentinelPassword=sent-pw');
    expect(t).toEqual({
      kind: 'sentinel', tls: false, password: 'master-pw', sentinelPassword: 'sent-pw', masterName: 'my.master', db: 3,
      sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }],
    });
    expect(describeTopology(t)).toBe('sentinel my.master via s1:26379,s2:26379');
    expect(topologySecrets(t).sort()).toEqual(['master-pw', 'sent-pw']);
    expect(redactRedisUrl('redis+sentinel://:master-pw@s1:26379/m?sentinelPassword=sent-pw')).toBe('redis+sentinel://***@s1:26379/m?sentinelPassword=***');
  });

  it('refuses broken URLs with a reason that never repeats the password', () => {
    const bad: Array<[string, RegExp]> = [
      ['http://x', /must start with/],
      ['redis+cluster://:secret-pw@', /names no host/],
      ['redis+cluster://:secret-pw@h1:7000,h1:7000', /listed twice/],
      ['redis+cluster://:secret-pw@h1:70000', /port 1-65535/],
      ['redis+cluster://:secret-pw@h1', /host:port/],
      ['redis+cluster://:secret-pw@h1:7000/1', /no path/],
      ['redis+sentinel://:secret-pw@s1:26379', /master name/],
      ['redis+sentinel://:secret-pw@s1:26379/m/16', /0-15/],
      ['redis+sentinel://:secret-pw@s1:26379/m?other=1', /only query parameter/],
      ['redis+sentinel://:secret-pw@s1:26379/m%ZZ', /percent-encoding/],
      [`redis+cluster://${Array.from({ length: 65 }, (_, i) => `h${i}:7000`).join(',')}`, /more than 64/],
      // Long, backtracking-prone host lists still fail fast.
      [`redis+cluster://${'a'.repeat(100_000)}:`, /host:port/],
      [`redis+cluster://${',:'.repeat(50)}`, /host:port|more than/],
    ];
    for (const [url, reason] of bad) {
      const t0 = performance.now();
      let error: unknown;
      try {
        parseRedisTopology(url);
      } catch (err) {
        error = err;
      }
      expect(error, url.slice(0, 80)).toBeInstanceOf(RedisUrlError);
      expect((error as Error).message, url.slice(0, 80)).toMatch(reason);
      expect((error as Error).message).not.toContain('secret-pw');
      expect(performance.now() - t0).toBeLessThan(1_000);
    }
  });
});

describe('config for Cluster and Sentinel', () => {
  it('takes the topology from REDIS_URL and lists its passwords as secrets', () => {
    const config = loadConfig({ REDIS_URL: 'redis+sentinel://:m-secret-1@s1:26379,s2:26379/tw?sentinelPassword=s-secret-2' });
    expect(config.secrets).toEqual(expect.arrayContaining(['m-secret-1', 's-secret-2']));
    const view = JSON.stringify(describeConfig(config));
    expect(view).not.toContain('m-secret-1');
    expect(view).not.toContain('s-secret-2');
  });

  it('builds the URL from TAGWARDEN_REDIS_CLUSTER_NODES or TAGWARDEN_REDIS_SENTINELS, with REDIS_URL credentials', () => {
    const cluster = loadConfig({ REDIS_URL: 'rediss://:cl-secret@ignored:1', TAGWARDEN_REDIS_CLUSTER_NODES: '10.0.0.1:7000, 10.0.0.2:7000' });
    expect(cluster.redisUrl).toBe('rediss+cluster://:cl-secret@10.0.0.1:7000,10.0.0.2:7000');
    expect(cluster.secrets).toContain('cl-secret');
    const sentinel = loadConfig({ TAGWARDEN_REDIS_SENTINELS: 's1:26379,s2:26379', TAGWARDEN_REDIS_SENTINEL_MASTER: 'mymaster' });
    expect(parseRedisTopology(sentinel.redisUrl)).toMatchObject({ kind: 'sentinel', masterName: 'mymaster', sentinels: [{ host: 's1' }, { host: 's2' }] });
  });

  it('lists every topology problem by variable name', () => {
    const problems = (env: Record<string, string>): string => {
      try {
        loadConfig(env);
      } catch (err) {
        expect(err).toBeInstanceOf(TagwardenError);
        return (err as Error).message;
      }
      return '';
    };
    expect(problems({ TAGWARDEN_REDIS_SENTINELS: 's1:26379' })).toContain('TAGWARDEN_REDIS_SENTINEL_MASTER');
    expect(problems({ TAGWARDEN_REDIS_SENTINEL_MASTER: 'm' })).toContain('TAGWARDEN_REDIS_SENTINELS');
    expect(problems({ TAGWARDEN_REDIS_CLUSTER_NODES: 'a:1', TAGWARDEN_REDIS_SENTINELS: 'b:2', TAGWARDEN_REDIS_SENTINEL_MASTER: 'm' })).toContain('not both');
    expect(problems({ TAGWARDEN_REDIS_CLUSTER_NODES: 'a:1,nonsense' })).toMatch(/REDIS_URL: node 2/);
    expect(problems({ TAGWARDEN_QUEUE_PREFIX: 'tw{a}{b}' })).toContain('TAGWARDEN_QUEUE_PREFIX');
    expect(problems({ TAGWARDEN_QUEUE_PREFIX: 'tw{' })).toContain('TAGWARDEN_QUEUE_PREFIX');
  });
});

describe('hash tags', () => {
  // The key shapes of BullMQ (prefix:queue:suffix) and of the ledger and limiter (see ledger.ts, rate-limiter.ts).
  const queueKeys = (prefix: string, queue: string) => ['wait', 'active', 'meta', 'events', 'id', 'stalled-check', 'job-1', 'repeat', 'limiter'].map((s) => `${prefix}:${queue}:${s}`);

  it('puts every key of one queue, one run or one account in one slot, whatever the names', () => {
    const accounts = ['default', 'a'.repeat(64), '1234567890123456', 'x-y_z', ''];
    const runs = ['sched-p-cn-hangzhou-1700000000000', 'api-{evil}', 'r}{', '', '{'.repeat(200)];
    for (const prefix of ['tagwarden', 'tw.prod-1', '{tagwarden}']) {
      for (const account of accounts) {
        const slots = new Set([
          ...queueKeys(prefix, untagQueueName(account, 'cn-hangzhou')),
          ...queueKeys(prefix, untagQueueName(account, 'ap-southeast-1')),
          `${prefix}:ratelimit:${accountTag(account)}:cn-hangzhou:UnTagResources`,
          `${prefix}:ratelimit:${accountTag(account)}:eu-central-1:ListTagResources`,
        ].map(keySlot));
        expect(slots.size, `${prefix} ${account}`).toBe(1);
      }
      for (const run of runs) {
        const slots = new Set(['batches', 'counters', 'scans', 'ended', 'plan:p|cn-hangzhou'].map((part) => keySlot(`${prefix}:run:${runTag(run)}:${part}`)));
        expect(slots.size, `${prefix} ${run}`).toBe(1);
      }
      expect(new Set(queueKeys(prefix, SCAN_QUEUE).map(keySlot)).size).toBe(1);
    }
  });

  it('spreads accounts over the slots of 3 masters (a plain prefix)', () => {
    // The slot ranges redis-cli --cluster create gives 3 masters.
    const masterOf = (slot: number) => (slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2);
    const used = new Set(Array.from({ length: 12 }, (_, i) => masterOf(keySlot(`tagwarden:${untagQueueName(`acct-${i}`, 'cn-hangzhou')}:wait`))));
    expect(used.size).toBe(3);
  });

  it('matches Redis itself on known slots', () => {
    // Values from CLUSTER KEYSLOT on Redis 7.
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('hello')).toBe(866);
    expect(keySlot('foo{}{bar}')).toBe(8363); // an empty tag: the whole key counts
    expect(keySlot('foo{{bar}}zap')).toBe(4015); // the tag is `{bar`
  });
});
