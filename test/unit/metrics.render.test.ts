import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics, renderMetrics } from '../../src/metrics/index.js';

const REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing'];

/** A registry with every kind of metric and the values and label texts that need escaping or special formats. */
function hostileRegistry(): Registry {
  const registry = new Registry();
  const registers = [registry];
  const counter = new Counter({ name: 'hostile_total', help: 'back\\slash\nnewline "quote"', labelNames: ['key', 'n'], registers });
  counter.inc({ key: 'q"u\\o\nte', n: 1 }, 2);
  counter.inc({ key: 'emoji 😀 ünïcode', n: 2 }, 0.1 + 0.2);
  counter.inc({ key: '', n: 3 }, NaN);
  counter.inc({ key: 'big', n: 4 }, 1e21);
  new Counter({ name: 'unlabelled_total', help: 'no labels', registers }).inc(3);
  new Counter({ name: 'empty_total', help: 'never incremented', labelNames: ['a'], registers });
  const gauge = new Gauge({ name: 'hostile_gauge', help: 'infinities', labelNames: ['sign'], registers });
  gauge.set({ sign: 'minus' }, -Infinity);
  gauge.set({ sign: 'plus' }, Infinity);
  gauge.set({ sign: 'zero' }, -0);
  let collected = 0;
  new Gauge({ name: 'collected_gauge', help: 'set in collect', registers, collect() { collected += 1; this.set(collected); } });
  const histogram = new Histogram({ name: 'hostile_seconds', help: 'a histogram', labelNames: ['a'], buckets: [0.1, 1], registers });
  histogram.observe({ a: 'x"y' }, 0.5);
  new Summary({ name: 'hostile_summary', help: 'a summary', percentiles: [0.5], registers }).observe(2);
  return registry;
}

describe('renderMetrics: the /metrics text, byte for byte what prom-client renders', () => {
  it('renders counters, gauges, histograms and summaries with hostile label values exactly as registry.metrics()', async () => {
    // Two registries built alike (collect() counts calls, so each is rendered once by each renderer).
    const ours = (await renderMetrics(hostileRegistry())).toString('utf8');
    const theirs = await hostileRegistry().metrics();
    expect(ours).toBe(theirs);
    expect(ours).toContain('hostile_total{key="q\\"u\\\\o\\nte",n="1"} 2');
  });

  it("follows values that change between renders and the registry's default labels, also when they are replaced", async () => {
    const registry = new Registry();
    const counter = new Counter({ name: 'c_total', help: 'c', labelNames: ['policy', 'account'], registers: [registry] });
    counter.inc({ policy: 'p' }, 1);
    expect((await renderMetrics(registry)).toString()).toBe(await registry.metrics());
    counter.inc({ policy: 'p' }, 2);
    registry.setDefaultLabels({ account: '1234', zone: 'a"b' });
    counter.inc({ policy: 'q', account: 'own' }, 5);
    const first = (await renderMetrics(registry)).toString();
    expect(first).toBe(await registry.metrics());
    expect(first).toContain('c_total{policy="p",account="1234",zone="a\\"b"} 3');
    registry.setDefaultLabels({ account: '5678' });
    expect((await renderMetrics(registry)).toString()).toBe(await registry.metrics());
  });

  it("renders tagwarden's own metrics for 2,000 policies exactly as registry.metrics(), before and after removing some", async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry, { policies: [], regions: REGIONS, queues: ['q'] }, async () => [{ queue: 'q', counts: { waiting: 3, failed: 1 } }]);
    for (let i = 0; i < 2_000; i++) metrics.addPolicy(`policy-${i}`, [REGIONS[i % REGIONS.length]!]);
    expect((await renderMetrics(registry)).toString()).toBe(await registry.metrics());
    await metrics.retainPolicies(new Set(Array.from({ length: 1_000 }, (_, i) => `policy-${i}`)));
    expect((await renderMetrics(registry)).toString()).toBe(await registry.metrics());
  });

  it('asks anything that is not a Registry (a merged view) for its text', async () => {
    const merged = { contentType: Registry.PROMETHEUS_CONTENT_TYPE, metrics: async () => 'x_total 1\n' };
    expect((await renderMetrics(merged)).toString()).toBe('x_total 1\n');
  });
});
