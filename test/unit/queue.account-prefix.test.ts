// accountQueuePrefix: every key of one account hashes to one Redis Cluster slot (the account is the first hash
// tag, whatever hash tags the queue names carry), different accounts spread over slots, and hostile IDs are refused.
import { describe, expect, it } from 'vitest';
import { accountQueuePrefix, untagQueueName, SCAN_QUEUE } from '../../src/queue/index.js';

/** Redis Cluster's key slot: CRC16-XMODEM of the first non-empty {...} (or the whole key) mod 16384. */
function calculateSlot(key: string): number {
  const open = key.indexOf('{');
  const close = open >= 0 ? key.indexOf('}', open + 1) : -1;
  const hashed = open >= 0 && close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(hashed)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

describe('accountQueuePrefix', () => {
  it('the slot function agrees with the Redis Cluster specification', () => {
    // Reference values from the Redis Cluster spec and `CLUSTER KEYSLOT`.
    expect(calculateSlot('123456789')).toBe(0x31c3 % 16384);
    expect(calculateSlot('foo')).toBe(12182);
    expect(calculateSlot('{user1000}.following')).toBe(calculateSlot('user1000'));
  });

  it('puts the account in the first hash tag, so all its keys share one slot even with tagged queue names', () => {
    const p = accountQueuePrefix('tagwarden', '1000000000000001');
    expect(p).toBe('tagwarden.acct-{1000000000000001}');
    const keys = [
      `${p}:${SCAN_QUEUE}:wait`,
      `${p}:{scan}:meta`,
      `${p}:untag-{1000000000000001}-cn-hangzhou:wait`,
      `${p}:${untagQueueName('1000000000000001', 'cn-beijing')}:events`,
      `${p}:ratelimit:cn-hangzhou:UnTagResources`,
      `${p}.run-abc:untag-x-cn-hangzhou:id`,
    ];
    const slots = new Set(keys.map((k) => calculateSlot(k)));
    expect(slots.size).toBe(1);
    expect([...slots][0]).toBe(calculateSlot('1000000000000001'));
  });

  it('spreads 50 accounts over many slots', () => {
    const slots = new Set(Array.from({ length: 50 }, (_, i) => calculateSlot(`${accountQueuePrefix('tw', String(1_000_000_000_000_000 + i))}:scan:wait`)));
    expect(slots.size).toBeGreaterThan(40);
  });

  it('refuses account IDs that are not digits (braces, empty, separators) and a prefix with braces', () => {
    for (const bad of ['', '12}3', '{1}', '1:2', '12 3', 'abc', '1'.repeat(33)]) {
      expect(() => accountQueuePrefix('tw', bad)).toThrow(/digits/);
    }
    expect(() => accountQueuePrefix('t{w}', '123')).toThrow(/braces/);
  });
});
