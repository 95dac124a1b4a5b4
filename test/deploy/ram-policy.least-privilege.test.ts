import { describe, expect, it } from 'vitest';
import { readRepoFile } from './tools.js';

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
}

const policy = JSON.parse(readRepoFile('deploy', 'ram-policy.json')) as { Version: string; Statement: Statement[] };
const list = (v: string | string[]): string[] => (Array.isArray(v) ? v : [v]);
const PEER_ARN = 'acs:vpc:*:<accountId>:vpcpeer/*';

function resourcesOf(action: string): string[] {
  return policy.Statement.filter((s) => list(s.Action).includes(action)).flatMap((s) => list(s.Resource));
}

describe('deploy/ram-policy.json', () => {
  it('allows exactly the four VpcPeer actions tagwarden calls, nothing else', () => {
    expect(policy.Version).toBe('1');
    for (const s of policy.Statement) expect(s.Effect).toBe('Allow');
    const actions = policy.Statement.flatMap((s) => list(s.Action)).sort();
    expect(actions).toEqual([
      'vpc:GetVpcPeerConnectionAttribute',
      'vpc:ListTagResources',
      'vpc:ListVpcPeerConnections',
      'vpc:UnTagResources',
    ]);
    expect(actions.some((a) => a.includes('*'))).toBe(false);
    expect(actions).not.toContain('vpc:TagResources');
  });

  it('scopes UnTagResources to peering connections only (the action name also covers VPC 2016-04-28 resources)', () => {
    expect(resourcesOf('vpc:UnTagResources')).toEqual([PEER_ARN]);
    expect(resourcesOf('vpc:ListVpcPeerConnections')).toEqual([PEER_ARN]);
    expect(resourcesOf('vpc:ListTagResources')).toEqual(['*']);
  });

  it('is explained statement by statement in deploy/README.md', () => {
    const readme = readRepoFile('deploy', 'README.md');
    for (const action of ['vpc:UnTagResources', 'vpc:ListVpcPeerConnections', 'vpc:ListTagResources', 'vpc:GetVpcPeerConnectionAttribute']) {
      expect(readme, action).toContain(action);
    }
    expect(readme).toMatch(/2016-04-28/);
  });
});
