import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateEstate } from '../../src/emulator/generate.js';
import type { Resource } from '../../src/model.js';
import { compilePolicies, compilePolicyDocument, discoveryPlan, matchResource } from '../../src/policy/index.js';
import type { CompiledPolicy } from '../../src/policy/index.js';

const NOW = new Date('2026-11-27T12:00:00Z');
const DIR = 'policies';
const sources = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((f) => ({ file: join(DIR, f), text: readFileSync(join(DIR, f), 'utf8') }));
const { policies, findings } = compilePolicies(sources, NOW);
const byName = (name: string) => policies.find((p) => p.name === name) as CompiledPolicy;

const defined = (o: Record<string, string | undefined>) =>
  Object.fromEntries(Object.entries(o).filter((e): e is [string, string] => e[1] !== undefined));
const estate: Resource[] = [...generateEstate(3000, 7)].map((r) => ({
  id: r.id,
  region: r.region,
  tags: r.tags,
  attributes: defined({ name: r.name, status: r.status, vpcId: r.vpcId, acceptingVpcId: r.acceptingVpcId, resourceGroupId: r.resourceGroupId }),
}));

/** The estate after every enforce policy has run until nothing is left to remove. */
function enforce(resources: Resource[]): Resource[] {
  const enforcing = policies.filter((p) => p.mode === 'enforce');
  return resources.map((r) => {
    let tags = { ...r.tags };
    for (let round = 0; round < 5; round++) {
      let changed = false;
      for (const p of enforcing) {
        const removal = matchResource(p, { ...r, tags }, NOW);
        if (!removal) continue;
        changed = true;
        tags = removal.all ? {} : Object.fromEntries(Object.entries(tags).filter(([k]) => !removal.keys.includes(k)));
      }
      if (!changed) break;
    }
    return { ...r, tags };
  });
}

describe('policies/README.md', () => {
  it('has YAML examples of complete policies that are valid', () => {
    const readme = readFileSync(join(DIR, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '').filter((b) => b.includes('apiVersion:'));
    expect(blocks.length).toBeGreaterThan(0);
    const result = compilePolicies(blocks.map((text, i) => ({ file: `README block ${i}`, text })), NOW);
    expect(result.findings).toEqual([]);
    expect(result.policies).toHaveLength(blocks.length);
  });
});

describe('the shipped example policies', () => {
  it('are all valid, without warnings', () => {
    expect(findings).toEqual([]);
    expect(policies.map((p) => p.name).sort()).toEqual([
      'dev-unknown-owner', 'expired-connections-cleanup', 'pin-two-connections-sample', 'preview-staging-reset',
      'remove-legacy-finance-keys', 'retire-project-tags-sample', 'strip-temporary-tags',
    ]);
  });

  it('cover both modes, both schedule forms and both discovery paths', () => {
    expect(new Set(policies.map((p) => p.mode))).toEqual(new Set(['enforce', 'dryRun']));
    expect(policies.some((p) => 'cron' in p.schedule) && policies.some((p) => 'everyMs' in p.schedule)).toBe(true);
    expect(discoveryPlan(byName('remove-legacy-finance-keys'))).toEqual({ kind: 'tag-keys', tagKeys: ['FinanceDept', 'legacy-billing-code'], tags: [] });
    expect(discoveryPlan(byName('strip-temporary-tags')).kind).toBe('connections');
  });

  it('survive a round trip through their plain JSON documents (as scan jobs carry them)', () => {
    for (const p of policies) {
      const again = compilePolicyDocument(JSON.parse(JSON.stringify(p.document)), NOW);
      expect(again.findings).toEqual([]);
      expect(again.policy?.hash).toBe(p.hash);
    }
  });

  it('enforced together on the generated estate, leave exactly the well-defined result', () => {
    const after = enforce(estate);
    let removedSomething = 0;
    for (const [i, r] of after.entries()) {
      const before = estate[i] as Resource;
      const keys = Object.keys(r.tags);
      if (keys.length < Object.keys(before.tags).length) removedSomething++;
      expect(keys.filter((k) => /^tmp-|^scratch-\d+$|^FinanceDept$|^legacy-billing-code$/.test(k))).toEqual([]);
      if (before.attributes.status === 'Expired') {
        expect(keys.every((k) => k === 'owner' || k === 'cost-center')).toBe(true);
      } else if (before.tags.env === 'dev' && ['Activated', 'Accepting'].includes(before.attributes.status ?? '')) {
        expect(r.tags.owner ?? 'absent').not.toMatch(/^unknown/);
      }
      // Nothing outside the policies' intent goes: owner (except placeholders), cost-center, env and project stay.
      const status = before.attributes.status ?? '';
      const placeholderOwner = before.tags.env === 'dev' && /^unknown/.test(before.tags.owner ?? '') && ['Activated', 'Accepting'].includes(status);
      for (const k of ['cost-center', 'env', 'project', 'owner']) {
        const expectedGone = status === 'Expired' ? !['owner', 'cost-center'].includes(k) : k === 'owner' && placeholderOwner;
        if (before.tags[k] !== undefined) expect(r.tags[k]).toBe(expectedGone ? undefined : before.tags[k]);
      }
    }
    expect(removedSomething).toBeGreaterThan(estate.length / 5);
  });

  it('reach a fixed point in one pass: no enforce policy undoes or extends another', () => {
    const once = enforce(estate);
    for (const r of once) for (const p of policies.filter((x) => x.mode === 'enforce')) expect(matchResource(p, r, NOW)).toBeNull();
  });

  it('never remove a key that another enforce policy keeps explicitly on the same resource', () => {
    const enforcing = policies.filter((p) => p.mode === 'enforce');
    // "Selects" = the policy with remove.all and no keep would act on the resource.
    const selector = (p: CompiledPolicy) => {
      const { remove: _remove, keep: _keep, ...rest } = p.document.spec;
      return compilePolicyDocument({ ...p.document, spec: { ...rest, remove: { all: true } } }, NOW).policy as CompiledPolicy;
    };
    const selectors = new Map(enforcing.map((p) => [p.name, selector(p)]));
    for (const r of estate) {
      for (const a of enforcing) {
        const removal = matchResource(a, r, NOW);
        if (!removal) continue;
        for (const b of enforcing) {
          if (b === a || !matchResource(selectors.get(b.name) as CompiledPolicy, r, NOW)) continue;
          for (const k of removal.keys) expect(b.document.spec.keep.includes(k), `${a.name} removes ${k} that ${b.name} keeps on ${r.id}`).toBe(false);
        }
      }
    }
  });

  it('stay under their blast-radius caps on the generated estate', () => {
    for (const p of policies) {
      for (const region of p.regions) {
        const removals = estate.filter((r) => r.region === region).reduce((n, r) => n + (matchResource(p, r, NOW)?.keys.length ?? 0), 0);
        expect(removals, `${p.name} in ${region}`).toBeLessThanOrEqual(p.maxRemovalsPerRun);
      }
    }
  });
});
