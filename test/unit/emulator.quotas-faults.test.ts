import { describe, expect, it } from 'vitest';
import { DOCUMENTED_QUOTAS } from '../../src/model.js';
import { FaultInjector, validateFaults } from '../../src/emulator/faults.js';
import { QuotaGate } from '../../src/emulator/quotas.js';
import { TtlMap } from '../../src/emulator/ttl-map.js';

describe('emulator QuotaGate', () => {
  it('counts per (region, action) in fixed windows aligned to the epoch', () => {
    let now = 10_000_500; // 500 ms into a 1000 ms window
    const gate = new QuotaGate(() => now, { quotas: { UnTagResources: 2 }, windowMs: 1000 });
    expect([1, 2, 3].map(() => gate.admit('cn-hangzhou', 'UnTagResources'))).toEqual([true, true, false]);
    expect(gate.admit('cn-shanghai', 'UnTagResources')).toBe(true); // other region, own counter
    expect(gate.admit('cn-hangzhou', 'TagResources')).toBe(true); // other action, own counter
    expect(gate.msToNextWindow()).toBe(500);
    now = 10_001_000; // the next window starts at the boundary, not 1000 ms after the first call
    expect(gate.admit('cn-hangzhou', 'UnTagResources')).toBe(true);
  });

  it('defaults to the documented quotas and lets a region override one action', () => {
    const gate = new QuotaGate(() => 0, { regionQuotas: { 'cn-beijing': { ListVpcPeerConnections: 1 } } });
    expect(gate.limit('cn-hangzhou', 'ListVpcPeerConnections')).toBe(DOCUMENTED_QUOTAS.ListVpcPeerConnections);
    expect(gate.limit('cn-beijing', 'ListVpcPeerConnections')).toBe(1);
    expect(gate.limit('cn-beijing', 'UnTagResources')).toBe(DOCUMENTED_QUOTAS.UnTagResources);
  });

  it('validates updates before changing anything, and resets the counters', () => {
    const gate = new QuotaGate(() => 0, { quotas: { UnTagResources: 1 } });
    expect(gate.admit('r', 'UnTagResources')).toBe(true);
    expect(() => gate.update({ quotas: { Bogus: 1 } as never })).toThrow(/unknown action/);
    expect(() => gate.update({ windowMs: 0 })).toThrow(/windowMs/);
    expect(gate.admit('r', 'UnTagResources')).toBe(false);
    gate.update({ windowMs: 5000 });
    expect(gate.admit('r', 'UnTagResources')).toBe(true);
  });
});

describe('emulator FaultInjector', () => {
  it('draws the same faults for the same seed, and roughly the configured share', () => {
    const draws = (seed: number) => {
      const f = new FaultInjector({ serviceUnavailable: 0.2, reset: 0.1, seed });
      return Array.from({ length: 5000 }, () => f.draw('UnTagResources', 'cn-hangzhou').fault);
    };
    const a = draws(5);
    expect(draws(5)).toEqual(a);
    expect(draws(6)).not.toEqual(a);
    const share = (kind: string) => a.filter((k) => k === kind).length / a.length;
    expect(share('serviceUnavailable')).toBeGreaterThan(0.17);
    expect(share('serviceUnavailable')).toBeLessThan(0.23);
    expect(share('reset')).toBeGreaterThan(0.08);
    expect(share('reset')).toBeLessThan(0.12);
    expect(share('internalError')).toBe(0);
  });

  it('limits faults to the listed actions and regions, and adds latency within latency + jitter', () => {
    const f = new FaultInjector({ throttle: 1, actions: ['UnTagResources'], regions: ['cn-beijing'], latencyMs: 5, jitterMs: 10 });
    expect(f.draw('ListTagResources', 'cn-beijing')).toEqual({ fault: null, delayMs: 0 });
    expect(f.draw('UnTagResources', 'cn-hangzhou')).toEqual({ fault: null, delayMs: 0 });
    const d = f.draw('UnTagResources', 'cn-beijing');
    expect(d.fault).toBe('throttle');
    expect(d.delayMs).toBeGreaterThanOrEqual(5);
    expect(d.delayMs).toBeLessThan(15);
  });

  it('rejects unknown fields and out-of-range probabilities', () => {
    expect(() => validateFaults({ reset: 1.5 })).toThrow(/faults.reset/);
    expect(() => validateFaults({ explode: 0.1 })).toThrow(/unknown field/);
    expect(() => validateFaults({ actions: ['Nope'] })).toThrow(/faults.actions/);
    expect(validateFaults({ html502: 0.5, regions: ['cn-hangzhou'] })).toEqual({ html502: 0.5, regions: ['cn-hangzhou'] });
  });
});

describe('emulator TtlMap', () => {
  it('forgets entries after the TTL', () => {
    let now = 0;
    const m = new TtlMap<number>(100, () => now);
    m.set('a', 1);
    now = 50;
    m.set('b', 2);
    expect(m.get('a')).toBe(1);
    now = 100;
    expect(m.get('a')).toBeUndefined();
    expect(m.get('b')).toBe(2);
    now = 151;
    m.set('c', 3); // prunes expired entries from the front
    expect(m.size).toBe(1);
  });
});
