import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePolicies, compilePolicyDocument, formatFinding } from '../../src/policy/index.js';
import type { PolicyFinding, PolicySource } from '../../src/policy/index.js';

const NOW = new Date('2026-11-27T12:00:00Z');
const BAD_DIR = 'test/fixtures/policies-bad';

function load(dir: string): PolicySource[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => ({ file: join(dir, f), text: readFileSync(join(dir, f), 'utf8') }));
}

/** 1-based line and column of the nth occurrence of `needle` in `text`. */
function position(text: string, needle: string, nth = 0): { line: number; column: number } {
  let at = -1;
  for (let i = 0; i <= nth; i++) {
    at = text.indexOf(needle, at + 1);
    if (at < 0) throw new Error(`fixture lacks ${needle}`);
  }
  const before = text.slice(0, at).split('\n');
  return { line: before.length, column: (before[before.length - 1]?.length ?? 0) + 1 };
}

const doc = (spec: Record<string, unknown>, name = 'p') => ({ apiVersion: 'tagwarden/v1', kind: 'TagPolicy', metadata: { name }, spec });

describe('compilePolicies on the broken fixtures', () => {
  const sources = load(BAD_DIR);
  const { policies, findings } = compilePolicies(sources, NOW);
  const text = (file: string) => sources.find((s) => s.file.endsWith(file))?.text ?? '';
  const find = (file: string, path: string, pred: (f: PolicyFinding) => boolean = () => true) =>
    findings.filter((f) => f.file.endsWith(file) && f.path === path && pred(f));

  it('keeps the valid document of a broken file and drops every broken one', () => {
    expect(policies.map((p) => p.name)).toEqual(['good-neighbour']);
    expect(policies[0]?.source.file).toBe(join(BAD_DIR, 'a-many-errors.yaml'));
  });

  it.each([
    ['metadata.name', 'schema', 'error', 'Strip_Temp', /invalid value "Strip_Temp"/, /lowercase letters, digits and '-'/],
    ['spec.regions[1]', 'meaning', 'warning', 'cn-moon', /region 'cn-moon' is not in VpcPeer's endpoint list; it is governed anyway/, /ap-south-1/],
    ['spec.selctor', 'schema', 'error', 'selctor:', /unknown field 'selctor'; did you mean 'selector'\?/, /selector/],
    ['spec.remove.keys[1]', 'meaning', 'error', '"acs:rm:rgId"', /system tag/, /not starting with 'acs:'/],
    ['spec.remove.keyPatterns[1]', 'meaning', 'error', '"/^scratch-', /regex does not compile/, /glob/],
    ['spec.remove.where.nobody', 'meaning', 'warning', 'nobody:', /has no effect/, /remove\.keys/],
    ['spec.keep[0]', 'meaning', 'error', 'owner, cost-center]', /both removed .* and kept/, /one of the two lists/],
    ['spec.exemptions[0].until', 'meaning', 'warning', '2020-12-31', /expired/, /future date/],
    ['spec.exemptions[1]', 'meaning', 'error', 'until: 2026-02-30', /names no resources/, /resourceIds and\/or tags/],
    ['spec.exemptions[1].until', 'meaning', 'error', '2026-02-30', /not a real date/, /calendar date/],
    ['spec.exemptions[1].reason', 'schema', 'error', '""', /invalid value ""/, /non-empty reason/],
    ['spec.schedule.cron', 'meaning', 'error', '"61 * * * *"', /minute value 61 is out of range 0-59/, /5 fields/],
    ['spec.mode', 'schema', 'error', 'sometimes', /invalid value "sometimes"/, /enforce or dryRun/],
    ['spec.limits.maxRemovalsPerRun', 'schema', 'error', '-5', /invalid value -5/, /1 to 1000000/],
  ] as const)('a-many-errors.yaml: %s (%s %s)', (path, stage, severity, needle, message, expected) => {
    const matches = find('a-many-errors.yaml', path, (f) => f.stage === stage && f.severity === severity);
    expect(matches, JSON.stringify(findings.filter((f) => f.path === path))).toHaveLength(1);
    const f = matches[0] as PolicyFinding;
    expect(f.message).toMatch(message);
    expect(f.expected).toMatch(expected);
    expect({ line: f.line, column: f.column }).toEqual(position(text('a-many-errors.yaml'), needle));
    expect(f.policy).toBe('Strip_Temp');
  });

  it('reports a YAML syntax error with its position and skips that document', () => {
    const [f] = findings.filter((x) => x.file.endsWith('b-syntax.yaml'));
    expect(f).toMatchObject({ stage: 'yaml', severity: 'error', path: '' });
    expect(f?.line).toBeGreaterThanOrEqual(6);
    expect(f?.expected).toBeTruthy();
    expect(policies.some((p) => p.name === 'broken-syntax')).toBe(false);
  });

  it('reports a name used in two files on the later one, naming the first', () => {
    const [dup] = find('c-duplicate.yaml', 'metadata.name');
    expect(dup?.message).toBe(`policy name 'good-neighbour' is already used at ${join(BAD_DIR, 'a-many-errors.yaml')}:${position(text('a-many-errors.yaml'), 'apiVersion', 1).line}`);
    expect({ line: dup?.line, column: dup?.column }).toEqual(position(text('c-duplicate.yaml'), 'good-neighbour'));
  });

  it('reports the other problems of the duplicate in the same pass', () => {
    expect(find('c-duplicate.yaml', 'spec.remove.all')[0]?.message).toMatch(/cannot be combined with keys/);
    expect(find('c-duplicate.yaml', 'spec.schedule.every')[0]?.message).toMatch(/shorter than the minimum of 1m/);
  });

  it('gives every error a file, a position, what is wrong and what is valid; ordered by file and line', () => {
    const errors = findings.filter((f) => f.severity === 'error');
    expect(errors.length).toBeGreaterThanOrEqual(15);
    for (const f of errors) {
      expect(f.line).toBeGreaterThan(0);
      expect(f.column).toBeGreaterThan(0);
      expect(f.message.length).toBeGreaterThan(0);
      expect(f.expected?.length).toBeGreaterThan(0);
      if (f.stage !== 'yaml') expect(f.path.length).toBeGreaterThan(0);
    }
    const order = findings.map((f) => [sources.findIndex((s) => s.file === f.file), f.line, f.column] as const);
    const sorted = [...order].sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
    expect(order).toEqual(sorted);
  });
});

describe('formatFinding', () => {
  it('prints file:line:col, severity, path, message and the valid choices', () => {
    const line = formatFinding({ file: 'p.yaml', line: 3, column: 7, path: 'spec.remove.keys[2]', message: 'bad key', expected: 'a key', severity: 'error', stage: 'meaning', policy: 'x' });
    expect(line).toBe('p.yaml:3:7: error: spec.remove.keys[2]: bad key (valid: a key) [policy x]');
  });
  it('leaves out an unknown position and an empty path', () => {
    expect(formatFinding({ file: '<inline>', line: 0, column: 0, path: '', message: 'm', severity: 'warning', stage: 'yaml' })).toBe('<inline>: warning: m');
  });
});

describe('the other checks', () => {
  const one = (spec: Record<string, unknown>) => compilePolicyDocument(doc(spec), NOW);
  const base = { regions: ['cn-hangzhou'], remove: { keys: ['a'] } };

  it('accepts a minimal policy and applies the documented defaults', () => {
    const { policy, findings } = one(base);
    expect(findings).toEqual([]);
    expect(policy).toMatchObject({ name: 'p', mode: 'enforce', schedule: { everyMs: 600_000 }, maxRemovalsPerRun: 1000, resourceType: 'PeerConnection', source: { file: '<inline>', line: 0 } });
    expect(policy?.document.spec.keep).toEqual([]);
    expect(policy?.document.spec.remove.all).toBe(false);
  });

  it('re-compiles its own document to the same hash, and a change changes the hash', () => {
    const { policy } = one({ ...base, keep: ['b*'] });
    const again = compilePolicyDocument(JSON.parse(JSON.stringify(policy?.document)), NOW);
    expect(again.policy?.hash).toBe(policy?.hash);
    expect(one({ ...base, keep: ['c*'] }).policy?.hash).not.toBe(policy?.hash);
    expect(policy?.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('rejects a policy that removes nothing', () => {
    const { policy, findings } = one({ regions: ['cn-hangzhou'], remove: {} });
    expect(policy).toBeUndefined();
    expect(findings).toMatchObject([{ path: 'spec.remove', severity: 'error', message: 'this policy removes nothing', line: 0, column: 0 }]);
  });

  it.each([
    [{ every: '59s' }, 'spec.schedule.every', /minimum of 1m/],
    [{ every: '32d' }, 'spec.schedule.every', /maximum of 31d/],
    [{ every: '10 minutes' }, 'spec.schedule.every', /invalid value/],
    [{ cron: '*/10 * * *' }, 'spec.schedule.cron', /has 4 fields, expected 5/],
    [{ cron: '0 0 31 2 *' }, 'spec.schedule.cron', /never fires/],
    [{ cron: '@hourly' }, 'spec.schedule.cron', /macros/],
    [{ cron: '0 0 ? * MON' }, 'spec.schedule.cron', /non-standard/],
    [{ every: '1h', cron: '0 * * * *' }, 'spec.schedule', /both every and cron/],
    [{}, 'spec.schedule', /neither every nor cron/],
  ])('rejects schedule %j', (schedule, path, message) => {
    const { policy, findings } = one({ ...base, schedule });
    expect(policy).toBeUndefined();
    expect(findings.find((f) => f.path === path)?.message).toMatch(message);
  });

  it.each([
    [{ every: '1m' }, { everyMs: 60_000 }],
    [{ every: '90s' }, { everyMs: 90_000 }],
    [{ every: '31d' }, { everyMs: 31 * 86_400_000 }],
    [{ cron: '*/10  *  * * *' }, { cron: '*/10 * * * *' }],
    [{ cron: '0 3 * JAN-MAR mon-fri' }, { cron: '0 3 * JAN-MAR mon-fri' }],
    [{ cron: '5,35 0-23/2 1-15 */3 0,7' }, { cron: '5,35 0-23/2 1-15 */3 0,7' }],
  ])('accepts schedule %j', (schedule, expected) => {
    const { policy, findings } = one({ ...base, schedule });
    expect(findings).toEqual([]);
    expect(policy?.schedule).toEqual(expected);
  });

  it('warns about an expired exemption but still compiles the policy', () => {
    const { policy, findings } = one({ ...base, exemptions: [{ resourceIds: ['pcc-1'], until: '2026-11-26', reason: 'r' }] });
    expect(policy).toBeDefined();
    expect(findings).toMatchObject([{ severity: 'warning', path: 'spec.exemptions[0].until' }]);
    // A date exempts through the end of that day (UTC): 2026-11-27 is still running at NOW.
    expect(one({ ...base, exemptions: [{ resourceIds: ['pcc-1'], until: '2026-11-27', reason: 'r' }] }).findings).toEqual([]);
  });

  it('warns about a remove key that a keep pattern protects, and about a wildcard in an exact key', () => {
    const { policy, findings } = one({ regions: ['cn-hangzhou'], remove: { keys: ['tmp-a', 'x*'] }, keep: ['tmp-*'] });
    expect(policy).toBeDefined();
    expect(findings.map((f) => [f.path, f.severity])).toEqual([
      ['spec.remove.keys[1]', 'warning'],
      ['spec.remove.keys[0]', 'warning'],
    ]);
  });

  it('rejects a key removed both by pattern and kept by the same pattern, and remove keys with a URL', () => {
    const { findings } = one({ regions: ['cn-hangzhou'], remove: { keys: ['see-https://x'], keyPatterns: ['tmp-*'] }, keep: ['tmp-*'] });
    expect(findings.map((f) => f.path).sort()).toEqual(['spec.keep[0]', 'spec.remove.keys[0]']);
  });

  it('rejects a non-mapping document and a wrong apiVersion, with the valid values', () => {
    expect(compilePolicyDocument([1, 2], NOW).findings[0]).toMatchObject({ path: '', message: 'wrong type: got a list' });
    const { findings } = compilePolicyDocument({ ...doc(base), apiVersion: 'tagwarden/v2' }, NOW);
    expect(findings).toMatchObject([{ path: 'apiVersion', expected: 'tagwarden/v1' }]);
  });

  it('asks for quotes around a non-string tag value', () => {
    const { findings } = one({ ...base, selector: { tags: { exempt: true } } });
    expect(findings).toMatchObject([{ path: 'spec.selector.tags.exempt', message: 'wrong type: got the boolean true' }]);
    expect(findings[0]?.expected).toMatch(/quote values such as "true"/);
  });

  it('reports a missing required field at its parent', () => {
    const text = 'apiVersion: tagwarden/v1\nkind: TagPolicy\nmetadata:\n  name: x\nspec:\n  remove: { keys: [a] }\n';
    const { findings } = compilePolicies([{ file: 'f.yaml', text }], NOW);
    expect(findings).toMatchObject([{ path: 'spec.regions', message: "required field 'regions' is missing", line: 5, column: 1 }]);
  });

  it('skips empty documents and warns about a file without policies', () => {
    const { findings, policies } = compilePolicies([{ file: 'e.yaml', text: '# nothing here\n' }, { file: 'f.yaml', text: '---\n---\n' }], NOW);
    expect(policies).toEqual([]);
    expect(findings.map((f) => [f.file, f.severity, f.message])).toEqual([
      ['e.yaml', 'warning', 'file contains no policy documents'],
      ['f.yaml', 'warning', 'file contains no policy documents'],
    ]);
  });

  it('accepts the example of the issue verbatim, warning that its where condition on a kept key has no effect', () => {
    const text = [
      'apiVersion: tagwarden/v1', 'kind: TagPolicy', 'metadata:', '  name: strip-temporary-tags', '  description: Temporary tags must not outlive a sprint',
      'spec:', '  resourceType: PeerConnection', '  regions: [cn-hangzhou, cn-shanghai]', '  selector:', '    resourceIds: [pcc-123]', '    tags: { env: dev }',
      '  remove:', '    keys: [FinanceDept]', '    keyPatterns: ["tmp-*", "/^scratch-\\\\d+$/"]', '    where: { owner: "unknown*" }', '    all: false',
      '  keep: [owner, cost-center]', '  exemptions:', '    - resourceIds: [pcc-456]', '      until: 2026-12-31', '      reason: migration in progress',
      '  schedule: { every: 10m }', '  mode: enforce', '  limits:', '    maxRemovalsPerRun: 1000', '',
    ].join('\n');
    const { policies, findings } = compilePolicies([{ file: 'issue.yaml', text }], NOW);
    expect(policies.map((p) => p.name)).toEqual(['strip-temporary-tags']);
    expect(findings).toMatchObject([{ severity: 'warning', path: 'spec.remove.where.owner', line: 15, column: 14 }]);
    expect(policies[0]?.document.spec.remove.keyPatterns).toEqual(['tmp-*', '/^scratch-\\d+$/']);
  });

  it('rejects duplicate mapping keys at the YAML stage', () => {
    const text = 'apiVersion: tagwarden/v1\napiVersion: tagwarden/v1\n';
    const { findings } = compilePolicies([{ file: 'd.yaml', text }], NOW);
    expect(findings[0]).toMatchObject({ stage: 'yaml', severity: 'error', line: 2, column: 1, expected: 'each key at most once per mapping' });
  });
});
