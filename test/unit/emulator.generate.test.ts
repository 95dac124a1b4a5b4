import { describe, expect, it } from 'vitest';
import { DEFAULT_GENERATE_REGIONS, GENERATED_PROJECTS, GENERATED_TEAMS, generateEstate, type EmulatorResource } from '../../src/emulator/index.js';

const KEY_VOCABULARY = /^(owner|cost-center|env|project|tmp-debug|tmp-test|tmp-migration|tmp-ticket-[1-9]\d\d|scratch-([1-9]|[1-9]\d)|FinanceDept|legacy-billing-code)$/;

function share(resources: readonly EmulatorResource[], pred: (r: EmulatorResource) => boolean): number {
  return resources.filter(pred).length / resources.length;
}

describe('emulator generateEstate', () => {
  const estate = [...generateEstate(20_000, 42)];

  it('is deterministic by seed, and resource i does not depend on the count', () => {
    expect([...generateEstate(300, 42)]).toEqual(estate.slice(0, 300));
    expect([...generateEstate(300, 42)]).toEqual([...generateEstate(300, 42)]);
    const other = [...generateEstate(300, 43)];
    expect(other.map((r) => r.id)).not.toEqual(estate.slice(0, 300).map((r) => r.id));
  });

  it('gives unique pcc- ids of 20 lowercase alphanumerics, round-robin over the regions', () => {
    const big = [...generateEstate(100_000, 7, ['a-1', 'b-2'])];
    expect(new Set(big.map((r) => r.id)).size).toBe(100_000);
    for (const r of big.slice(0, 2000)) expect(r.id).toMatch(/^pcc-[a-z0-9]{20}$/);
    expect(big.slice(0, 4).map((r) => r.region)).toEqual(['a-1', 'b-2', 'a-1', 'b-2']);
    expect(estate.slice(0, 3).map((r) => r.region)).toEqual([...DEFAULT_GENERATE_REGIONS]);
  });

  it('uses only the documented tag vocabulary, never system tags, never more than 20 tags', () => {
    const keys = estate.flatMap((r) => Object.keys(r.tags));
    expect(keys.filter((k) => !KEY_VOCABULARY.test(k))).toEqual([]);
    expect(Math.max(...estate.map((r) => Object.keys(r.tags).length))).toBeLessThanOrEqual(20);
    expect(keys.filter((k) => k.startsWith('acs:') || k.startsWith('aliyun'))).toEqual([]);
    expect(new Set(keys.filter((k) => k.startsWith('tmp-ticket-'))).size).toBeGreaterThan(50);
  });

  it('draws each tag with its documented share', () => {
    const near = (value: number, expected: number): void => expect(Math.abs(value - expected)).toBeLessThan(0.015);
    near(share(estate, (r) => GENERATED_TEAMS.includes(r.tags['owner'] ?? '')), 0.9);
    near(share(estate, (r) => r.tags['owner'] === 'unknown'), 0.05);
    near(share(estate, (r) => !('owner' in r.tags)), 0.05);
    near(share(estate, (r) => /^cc-1\d{3}$/.test(r.tags['cost-center'] ?? '')), 0.8);
    near(share(estate, (r) => r.tags['env'] === 'prod'), 0.5);
    near(share(estate, (r) => r.tags['env'] === 'staging'), 0.25);
    near(share(estate, (r) => r.tags['env'] === 'dev'), 0.25);
    near(share(estate, (r) => Object.keys(r.tags).some((k) => k.startsWith('tmp-'))), 0.2);
    near(share(estate, (r) => Object.keys(r.tags).some((k) => k.startsWith('scratch-'))), 0.05);
    near(share(estate, (r) => 'FinanceDept' in r.tags), 0.1);
    near(share(estate, (r) => 'legacy-billing-code' in r.tags), 0.08);
    near(share(estate, (r) => GENERATED_PROJECTS.includes(r.tags['project'] ?? '')), 0.6);
    const tmpCounts = estate.map((r) => Object.keys(r.tags).filter((k) => k.startsWith('tmp-')).length);
    expect(Math.max(...tmpCounts)).toBe(2);
    expect(new Set(GENERATED_TEAMS.map((t) => estate.filter((r) => r.tags['owner'] === t).length > 0))).toEqual(new Set([true]));
  });

  it('fills realistic attributes', () => {
    const groups = new Set(estate.map((r) => r.resourceGroupId));
    expect(groups.size).toBeLessThanOrEqual(5);
    expect(share(estate, (r) => r.status === 'Activated')).toBeGreaterThan(0.8);
    expect(new Set(estate.map((r) => r.status))).toEqual(new Set(['Activated', 'Accepting', 'Updating', 'Expired']));
    estate.slice(0, 2000).forEach((r, i) => {
      expect(r.name).toMatch(new RegExp(`^peer-[a-z]+-${i}$`));
      expect(r.vpcId).toMatch(/^vpc-[a-z0-9]{20}$/);
      expect(r.acceptingVpcId).toMatch(/^vpc-[a-z0-9]{20}$/);
      expect(r.resourceGroupId).toMatch(/^rg-[a-z0-9]+$/);
      expect(r.gmtCreate).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect(r.gmtExpired !== null).toBe(r.status === 'Accepting' || r.status === 'Expired');
      expect(r.bandwidth === -1).toBe(r.acceptingRegionId === r.region);
      const owner = r.tags['owner'];
      if (owner !== undefined && owner.startsWith('team-')) expect(r.name).toBe(`peer-${owner.slice(5)}-${i}`);
    });
  });

  it('refuses nonsense counts and empty region lists', () => {
    expect(() => [...generateEstate(-1, 1)]).toThrow(RangeError);
    expect(() => [...generateEstate(1, 1, [])]).toThrow(RangeError);
  });
});
