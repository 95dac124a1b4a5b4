import { describe, expect, it } from 'vitest';
import { findObject, kustomize, markdownAnchors, readRepoFile, readYaml, runTool } from './tools.js';

interface Rule {
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: Array<{ name: string; rules: Rule[] }>;
}

const alerts = readYaml('deploy', 'prometheus', 'alerts.yml') as RuleFile;
const rules = alerts.groups.flatMap((g) => g.rules);

describe('alert rules', () => {
  it('pass promtool check rules', () => {
    expect(runTool('promtool', ['check', 'rules', 'deploy/prometheus/alerts.yml'])).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('pass their promtool unit tests (alerts.test.yml)', () => {
    expect(runTool('promtool', ['test', 'rules', 'deploy/prometheus/alerts.test.yml'])).toMatch(/SUCCESS/);
  });

  it('the compose Prometheus config is valid and loads the rules', () => {
    const out = runTool('promtool', ['check', 'config', 'deploy/prometheus/prometheus.yml']);
    expect(out).toMatch(/SUCCESS: 1 rule files found/);
    expect(out).toMatch(/is valid prometheus config file syntax/);
  });

  it('cover every failure mode the runbook promises', () => {
    const exprs = rules.map((r) => r.expr).join('\n');
    expect(exprs).toMatch(/tagwarden_untag_failures_total/);
    expect(exprs).toMatch(/tagwarden_throttled_total/);
    expect(exprs).toMatch(/tagwarden_queue_jobs/);
    expect(exprs).toMatch(/time\(\) - max by \(policy\) \(tagwarden_policy_last_success_timestamp_seconds\)\)\s*> on \(policy\)\s*2 \*/);
    expect(exprs).toMatch(/tagwarden_policy_interval_seconds/);
    expect(exprs).toMatch(/tagwarden_auth_failing/);
    expect(exprs).toMatch(/tagwarden_policy_errors_total\{reason=~"load\|validation"\}/);
    expect(exprs).toMatch(/tagwarden_policy_halted/);
  });

  it('each alert has a severity, a summary, a description and a runbook link to an existing heading', () => {
    const anchors = markdownAnchors(readRepoFile('deploy', 'README.md'));
    for (const rule of rules) {
      const name = rule.alert ?? '';
      expect(name, 'only alerting rules here').toMatch(/^Tagwarden[A-Za-z]+$/);
      expect(['warning', 'critical'], name).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, name).toBeTruthy();
      expect(rule.annotations?.description, name).toBeTruthy();
      expect(rule.annotations?.runbook_url, name).toBe(`deploy/README.md#${name.toLowerCase()}`);
      expect(anchors, `deploy/README.md needs a heading "${name}"`).toContain(name.toLowerCase());
    }
  });

  it('every alert is exercised by alerts.test.yml, firing at least once', () => {
    const tests = readYaml('deploy', 'prometheus', 'alerts.test.yml') as {
      tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
    };
    const fired = new Set(
      tests.tests.flatMap((t) => (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)),
    );
    expect([...fired].sort()).toEqual(rules.map((r) => r.alert).sort());
  });

  it('the PrometheusRule built by kustomize carries exactly the groups of alerts.yml (run deploy/sync.sh if not)', () => {
    for (const overlay of ['ack', 'local']) {
      const rule = findObject(kustomize(`deploy/kubernetes/overlays/${overlay}`), 'PrometheusRule', 'tagwarden');
      expect((rule.spec as RuleFile).groups, overlay).toEqual(alerts.groups);
    }
  });
});
