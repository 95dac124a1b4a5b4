// `promtool check metrics` on the project's own registry (names, types, help, units).
import { execFileSync } from 'node:child_process';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics/index.js';
import { requireTool } from './tools.js';

describe('metrics lint', () => {
  it('passes promtool check metrics with samples in every instrument', async () => {
    const promtool = requireTool('promtool');
    const registry = new Registry();
    const m = createMetrics(registry, { policies: ['p'], regions: ['cn-hangzhou'], queues: ['untag-default-cn-hangzhou'] }, async () => [
      { queue: 'untag-default-cn-hangzhou', counts: { waiting: 3, active: 1, delayed: 0, failed: 2 } },
    ]);
    m.tagsRemoved.inc({ policy: 'p', region: 'cn-hangzhou' }, 5);
    m.untagFailures.inc({ policy: 'p', region: 'cn-hangzhou', code: 'ServiceUnavailable' });
    m.apiDuration.observe({ api: 'UnTagResources' }, 0.05);
    m.scanDuration.observe({ policy: 'p' }, 3);
    m.violations.set({ policy: 'p', region: 'cn-hangzhou' }, 7);
    m.lastSuccess.set({ policy: 'p' }, Date.now() / 1000);
    m.policyInterval.set({ policy: 'p' }, 600);
    const text = await registry.metrics();
    const out = execFileSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(out.trim()).toBe('');
    expect(text).toContain('tagwarden_queue_jobs{queue="untag-default-cn-hangzhou",state="failed"} 2');
  });
});
