import { Registry } from 'prom-client';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { createMemoryLogger } from '../../src/logging/index.js';
import { createMetrics } from '../../src/metrics/index.js';
import { createPolicySet } from '../../src/scheduler/index.js';

const REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing', 'cn-shenzhen', 'cn-qingdao', 'ap-southeast-1'];

const doc = (name: string, regions: string[]) =>
  stringify({ apiVersion: 'tagwarden/v1', kind: 'TagPolicy', metadata: { name }, spec: { resourceType: 'PeerConnection', regions, remove: { keys: ['tmp'] }, schedule: { every: '1h' } } });

/** `policy` label values of every series in the registry's text, with how many series each has. */
async function seriesByPolicy(registry: Registry): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await registry.metrics()).split('\n')) {
    const m = /policy="([^"]*)"/.exec(line);
    if (m && !line.startsWith('#')) out.set(m[1]!, (out.get(m[1]!) ?? 0) + 1);
  }
  return out;
}

describe('metrics cardinality follows the loaded policies', () => {
  it("zeroes a policy's label sets for its own regions only", async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry, { policies: [], regions: REGIONS, queues: [] });
    metrics.addPolicy('one-region', ['cn-hangzhou']);
    metrics.addPolicy('two-regions', ['cn-hangzhou', 'cn-beijing']);
    const text = await registry.metrics();
    const regionsOf = (policy: string) => new Set([...text.matchAll(new RegExp(`policy="${policy}",region="([^"]+)"`, 'g'))].map((m) => m[1]));
    expect([...regionsOf('one-region')]).toEqual(['cn-hangzhou']);
    expect([...regionsOf('two-regions')].sort()).toEqual(['cn-beijing', 'cn-hangzhou']);
    const counts = await seriesByPolicy(registry);
    expect(counts.get('two-regions')).toBe(2 * counts.get('one-region')! - 4); // the 4 policy-only error series once
  });

  it('removes every series of a removed or renamed policy on reload, and labels broken documents unknown', async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry, { policies: [], regions: REGIONS, queues: [] });
    const { logger } = createMemoryLogger({ level: 'error', secrets: [] });
    let texts: Record<string, string> = { 'a.yaml': doc('keep-me', ['cn-hangzhou']), 'b.yaml': doc('old-name', ['cn-shanghai']) };
    const set = createPolicySet({
      read: async () => ({ sources: Object.entries(texts).map(([file, text]) => ({ file, text })), findings: [] }),
      now: () => new Date('2026-12-01T12:00:00Z'),
      metrics,
      logger,
      onChange: async () => undefined,
    });
    await set.reload();
    // Work happened under the old name: counters, a histogram and gauges all carry it.
    metrics.untagFailures.inc({ policy: 'old-name', region: 'cn-shanghai', code: 'Throttling' });
    metrics.scanDuration.observe({ policy: 'old-name' }, 3);
    metrics.lastSuccess.set({ policy: 'old-name' }, 1);
    metrics.violations.set({ policy: 'old-name', region: 'cn-shanghai' }, 5);
    expect((await seriesByPolicy(registry)).get('old-name')).toBeGreaterThan(10);

    texts = {
      'a.yaml': doc('keep-me', ['cn-hangzhou']),
      'b.yaml': doc('new-name', ['cn-shanghai']),
      // Broken documents with names an attacker chose: none may become a label value.
      ...Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`bad-${i}.yaml`, doc(`minted-${i}`, ['mars-1'])])),
    };
    await set.reload();
    const after = await seriesByPolicy(registry);
    expect(after.has('old-name')).toBe(false);
    expect(after.has('new-name')).toBe(true);
    expect(after.has('keep-me')).toBe(true);
    expect([...after.keys()].filter((p) => p.startsWith('minted-'))).toEqual([]);
    expect(await registry.getSingleMetricAsString('tagwarden_policy_errors_total')).toMatch(/policy="unknown",reason="validation"} 50/);
    expect(metrics.policyLabel('minted-1')).toBe('unknown');
    expect(metrics.policyLabel('new-name')).toBe('new-name');
  });
});
