import { describe, expect, it } from 'vitest';
import { discoveryPlan } from '../../src/policy/index.js';
import { compiledPolicy } from '../support/policies.js';

const policy = compiledPolicy;

describe('discoveryPlan', () => {
  it('uses ListTagResources by key when only exact keys are removed and nothing but tags is selected', () => {
    expect(discoveryPlan(policy({ remove: { keys: ['legacy', 'FinanceDept', 'legacy'] } }))).toEqual({ kind: 'tag-keys', tagKeys: ['FinanceDept', 'legacy'], tags: [] });
  });

  it('pushes selector tags into the tag filter: exact values with value, patterns and empty values as key only', () => {
    const p = policy({ selector: { tags: { env: 'dev', team: 'team-*', hold: '' } }, remove: { keys: ['owner'], where: { owner: 'unknown*' } } });
    expect(discoveryPlan(p)).toEqual({ kind: 'tag-keys', tagKeys: ['owner'], tags: [{ key: 'env', value: 'dev' }, { key: 'team' }, { key: 'hold' }] });
  });

  it('does not query keys that a keep pattern protects', () => {
    expect(discoveryPlan(policy({ remove: { keys: ['tmp-a', 'b'] }, keep: ['tmp-*'] }))).toMatchObject({ kind: 'tag-keys', tagKeys: ['b'] });
  });

  it.each([
    ['key patterns', { remove: { keyPatterns: ['tmp-*'] } }],
    ['all', { remove: { all: true } }],
    ['resource IDs', { selector: { resourceIds: ['pcc-1'] }, remove: { keys: ['a'] } }],
    ['attributes', { selector: { attributes: { statuses: ['Expired'] } }, remove: { keys: ['a'] } }],
    ['a tag-based exemption (rows may lack the exemption tag)', { remove: { keys: ['a'] }, exemptions: [{ tags: { hold: '*' }, until: '2027-01-01', reason: 'r' }] }],
  ])('pages ListVpcPeerConnections with %s', (_what, spec) => {
    expect(discoveryPlan(policy(spec)).kind).toBe('connections');
  });

  it('keeps ListTagResources with an ID-based exemption', () => {
    expect(discoveryPlan(policy({ remove: { keys: ['a'] }, exemptions: [{ resourceIds: ['pcc-1'], until: '2027-01-01', reason: 'r' }] })).kind).toBe('tag-keys');
  });

  it('passes the server-side filters ListVpcPeerConnections supports', () => {
    const p = policy({
      selector: {
        resourceIds: ['pcc-2', 'pcc-1'],
        tags: { env: 'dev', team: '/^a/' },
        attributes: { vpcIds: ['vpc-a'], names: ['peer-1'], resourceGroupIds: ['rg-1'], statuses: ['Activated'] },
      },
      remove: { all: true },
    });
    expect(discoveryPlan(p)).toEqual({
      kind: 'connections',
      filter: { instanceIds: ['pcc-1', 'pcc-2'], vpcIds: ['vpc-a'], name: 'peer-1', resourceGroupId: 'rg-1', tags: [{ key: 'env', value: 'dev' }, { key: 'team' }] },
    });
  });

  it('filters client-side only where the API cannot express the selector', () => {
    const p = policy({
      selector: { attributes: { vpcIds: ['vpc-a', 'vpc-b'], names: ['peer-*'], resourceGroupIds: ['rg-1', 'rg-2'] } },
      remove: { keyPatterns: ['x*'] },
    });
    // Two VPC IDs would mean "the connection between them"; a name pattern and two groups have no API filter.
    expect(discoveryPlan(p)).toEqual({ kind: 'connections', filter: {} });
  });
});
