import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { collectProcessMetrics, createMetrics } from '../../src/metrics/index.js';
import { metricNamesIn, readRepoFile, readYaml, runTool } from './tools.js';

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string }> }>;
}
interface Target {
  expr?: string;
}
interface Panel {
  type: string;
  title?: string;
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query?: string | { query: string } }> };
}

/** Every series name the project's registry exposes, with histogram suffixes. */
async function registryNames(): Promise<Set<string>> {
  const registry = new Registry();
  createMetrics(registry, { policies: ['p'], regions: ['cn-hangzhou'], queues: ['q'] });
  collectProcessMetrics(registry);
  const names = new Set<string>();
  for (const metric of await registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram') {
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
    }
    if (String(metric.type) === 'summary') {
      for (const suffix of ['_sum', '_count']) names.add(metric.name + suffix);
    }
  }
  return names;
}

function dashboardExprs(dashboard: Dashboard): Array<{ panel: string; expr: string }> {
  const out: Array<{ panel: string; expr: string }> = [];
  const walk = (panels: readonly Panel[]): void => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        if (target.expr) out.push({ panel: panel.title ?? panel.type, expr: target.expr });
      }
      walk(panel.panels ?? []);
    }
  };
  walk(dashboard.panels);
  return out;
}

describe('metric names used by alerts and the dashboard', () => {
  let known: Set<string>;
  const alerts = readYaml('deploy', 'prometheus', 'alerts.yml') as RuleFile;
  const dashboard = JSON.parse(readRepoFile('deploy', 'grafana', 'tagwarden.json')) as Dashboard;

  beforeAll(async () => {
    known = await registryNames();
  });

  it('finds metric names in PromQL and ignores labels, functions, keywords and variables', () => {
    const names = metricNamesIn(
      'histogram_quantile(0.95, sum by (le, api) (rate(a_bucket{job=~"$job",x="b_c"}[$__rate_interval]))) ' +
        '/ on (policy) group_left () max without (instance) (b_total offset 5m) > 1e3 unless time() - c',
    );
    expect(names.sort()).toEqual(['a_bucket', 'b_total', 'c']);
  });

  it('the registry exposes the documented tagwarden metrics', () => {
    for (const name of [
      'tagwarden_tags_removed_total',
      'tagwarden_untag_failures_total',
      'tagwarden_api_request_duration_seconds_bucket',
      'tagwarden_queue_jobs',
      'tagwarden_policy_last_success_timestamp_seconds',
      'process_resident_memory_bytes',
    ]) {
      expect(known, name).toContain(name);
    }
  });

  it('every alert rule selects only metrics the registry exposes', () => {
    const unknown: string[] = [];
    for (const group of alerts.groups) {
      for (const rule of group.rules) {
        for (const name of metricNamesIn(rule.expr)) {
          if (!known.has(name)) unknown.push(`${rule.alert ?? rule.record}: ${name}`);
        }
      }
    }
    expect(unknown).toEqual([]);
  });

  it('every dashboard query and variable selects only metrics the registry exposes', () => {
    const exprs = dashboardExprs(dashboard);
    expect(exprs.length).toBeGreaterThan(10);
    const unknown: string[] = [];
    for (const { panel, expr } of exprs) {
      const names = metricNamesIn(expr);
      expect(names.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const name of names) if (!known.has(name)) unknown.push(`${panel}: ${name}`);
    }
    for (const variable of dashboard.templating.list) {
      const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
      const m = /label_values\(\s*([A-Za-z_:][\w:]*)/.exec(query ?? '');
      if (m?.[1] && !known.has(m[1])) unknown.push(`variable ${variable.name}: ${m[1]}`);
    }
    expect(unknown).toEqual([]);
  });

  it('the dashboard covers removals, failures, latency, throttling, queues, compliance, last success and readiness', () => {
    const all = dashboardExprs(dashboard)
      .map((e) => e.expr)
      .join('\n');
    expect(all).toMatch(/tagwarden_tags_removed_total/);
    expect(all).toMatch(/sum by \(code\) \(rate\(tagwarden_untag_failures_total/);
    expect(all).toMatch(/histogram_quantile\(0\.95, sum by \(le, api\) \(rate\(tagwarden_api_request_duration_seconds_bucket/);
    expect(all).toMatch(/tagwarden_throttled_total/);
    expect(all).toMatch(/tagwarden_queue_jobs/);
    expect(all).toMatch(/tagwarden_policy_violations/);
    expect(all).toMatch(/tagwarden_policy_last_success_timestamp_seconds/);
    expect(all).toMatch(/tagwarden_ready/);
    expect(dashboard.uid).toBe('tagwarden');
  });

  it('every dashboard query is valid PromQL (promtool)', () => {
    const exprs = dashboardExprs(dashboard);
    const rules = {
      groups: [
        {
          name: 'dashboard',
          rules: exprs.map((e, i) => ({
            record: `dashboard:query_${i}`,
            // Grafana substitutes its interval variable before the query reaches Prometheus.
            expr: e.expr.replaceAll('$__rate_interval', '5m'),
          })),
        },
      ],
    };
    const dir = mkdtempSync(path.join(tmpdir(), 'tagwarden-dashboard-'));
    try {
      const file = path.join(dir, 'dashboard-rules.yml');
      writeFileSync(file, stringify(rules));
      expect(runTool('promtool', ['check', 'rules', file])).toMatch(new RegExp(`SUCCESS: ${exprs.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
