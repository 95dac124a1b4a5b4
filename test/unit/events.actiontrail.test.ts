// The envelope checks and the ActionTrail reading of events: every plausible shape of the unconfirmed fields
// is accepted, other events are ignored with a bounded reason, malformed ones name the field.
import { describe, expect, it } from 'vitest';
import { TagwardenError } from '../../src/errors.js';
import { interpretEvent, parseDelivery, type CloudEvent, type InterpretOptions } from '../../src/events/index.js';

const OPTIONS: InterpretOptions = { ownAccessKeys: new Set(['STS.signed-by-a-replica']), ignoreIdentities: ['acs:ram::123:role/tagwarden', 'LTAI-own'], accountIds: [], defaultAccount: 'default', nowMs: 1_000 };

function event(data: Record<string, unknown>, extra: Record<string, unknown> = {}): CloudEvent {
  const [e] = parseDelivery({ specversion: '1.0', id: 'e-1', source: 'acs.actiontrail', type: 'actiontrail:ActionTrail:ApiCall', time: '2026-12-01T09:00:00Z', data, ...extra }, { maxEvents: 10 });
  return e!;
}
const base = { eventName: 'TagResources', eventType: 'ApiCall', serviceName: 'VpcPeer', acsRegion: 'cn-hangzhou', userAgent: 'console' };
const act = (data: Record<string, unknown>, extra?: Record<string, unknown>) => interpretEvent(event({ ...base, ...data }, extra), 'event', OPTIONS);

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof TagwardenError) return err.details.problems as string[];
    throw err;
  }
  throw new Error('expected PAYLOAD_INVALID');
}

describe('parseDelivery', () => {
  it('takes one event, a JSON array, or an {events} object', () => {
    const one = { specversion: '1.0', id: 'a', source: 's', type: 't' };
    expect(parseDelivery(one, { maxEvents: 5 })).toHaveLength(1);
    expect(parseDelivery([one, { ...one, id: 'b' }], { maxEvents: 5 })).toHaveLength(2);
    expect(parseDelivery({ events: [one] }, { maxEvents: 5 })).toHaveLength(1);
  });

  it('names every bad field and refuses the whole delivery', () => {
    expect(problemsOf(() => parseDelivery([{ specversion: '1.0', source: 's', type: 't' }, 42, { specversion: '2', id: '', source: 's', type: 't' }], { maxEvents: 5 }))).toEqual([
      'events[0].id: required (CloudEvents 1.0)',
      'events[1]: must be a JSON object (a CloudEvent)',
      'events[2].specversion: must be "1.0"',
      'events[2].id: must be a non-empty string',
    ]);
    expect(problemsOf(() => parseDelivery([], { maxEvents: 5 }))[0]).toMatch(/empty batch/);
    expect(problemsOf(() => parseDelivery(Array.from({ length: 6 }, () => ({})), { maxEvents: 5 }))[0]).toMatch(/at most 5/);
    expect(problemsOf(() => parseDelivery({ specversion: '1.0', id: 'x'.repeat(257), source: 's', type: 't' }, { maxEvents: 5 }))[0]).toMatch(/event\.id: at most 256/);
    expect(problemsOf(() => parseDelivery({ specversion: '1.0', id: 'i', source: 's', type: 't', time: '2026-13-45' }, { maxEvents: 5 }))[0]).toMatch(/event\.time/);
  });

  it('lists at most 20 problems for a batch of garbage', () => {
    expect(problemsOf(() => parseDelivery(Array.from({ length: 1000 }, () => null), { maxEvents: 1000 })).length).toBeLessThanOrEqual(21);
  });

  it('reads a JSON-string data, and refuses one that is not JSON', () => {
    const [e] = parseDelivery({ specversion: '1.0', id: 'a', source: 's', type: 't', data: '{"eventName":"X"}' }, { maxEvents: 1 });
    expect(e?.data).toEqual({ eventName: 'X' });
    expect(problemsOf(() => parseDelivery({ specversion: '1.0', id: 'a', source: 's', type: 't', data: '{' }, { maxEvents: 1 }))[0]).toMatch(/event\.data/);
  });
});

describe('interpretEvent', () => {
  it.each([
    ['flat ResourceId.N', { requestParameters: { RegionId: 'cn-hangzhou', ResourceType: 'PeerConnection', 'ResourceId.1': 'pcc-a', 'ResourceId.2': 'pcc-b' } }],
    ['a ResourceId array', { requestParameters: { ResourceType: 'PeerConnection', ResourceId: ['pcc-a', 'pcc-b'] } }],
    ['a ResourceId JSON string', { requestParameters: { ResourceType: 'PeerConnection', ResourceId: '["pcc-a","pcc-b"]' } }],
    ['requestParameterJson', { requestParameterJson: '{"ResourceType":"PeerConnection","ResourceId.1":"pcc-a","ResourceId.2":"pcc-b"}' }],
    ['referencedResources', { referencedResources: { 'ACS::VPC::PeerConnection': ['pcc-a', 'pcc-b'] } }],
    ['resourceName', { resourceName: 'pcc-a;pcc-b' }],
  ])('finds the connections in %s', (_name, data) => {
    expect(act(data)).toEqual({ kind: 'act', account: 'default', region: 'cn-hangzhou', resourceIds: ['pcc-a', 'pcc-b'], eventName: 'TagResources', timeMs: Date.parse('2026-12-01T09:00:00Z') });
  });

  it('accepts ConsoleOperation, serviceName Vpc, and takes the account from the CloudEvent', () => {
    const r = interpretEvent(
      event({ ...base, serviceName: 'Vpc', eventType: 'ConsoleOperation', resourceName: 'pcc-a' }, { type: 'actiontrail:ActionTrail:ConsoleOperation', aliyunaccountid: '5551234' }),
      'event',
      OPTIONS,
    );
    expect(r).toMatchObject({ kind: 'act', account: '5551234', resourceIds: ['pcc-a'] });
  });

  it('region falls back to RegionId, then aliyunregionid', () => {
    const { acsRegion: _r, ...noRegion } = base;
    expect(interpretEvent(event({ ...noRegion, requestParameters: { RegionId: 'cn-shanghai', 'ResourceId.1': 'pcc-a' } }), 'e', OPTIONS)).toMatchObject({ region: 'cn-shanghai' });
    expect(interpretEvent(event({ ...noRegion, resourceName: 'pcc-a' }, { aliyunregionid: 'eu-west-1' }), 'e', OPTIONS)).toMatchObject({ region: 'eu-west-1' });
    expect(interpretEvent(event({ ...noRegion, resourceName: 'pcc-a' }), 'e', OPTIONS)).toMatchObject({ kind: 'invalid' });
  });

  it.each([
    ['another event name', { eventName: 'DeleteVpcPeerConnection', resourceName: 'pcc-a' }, 'other_event'],
    ['another service', { serviceName: 'Ecs', resourceName: 'i-1' }, 'other_service'],
    ['another resource type', { requestParameters: { ResourceType: 'instance', 'ResourceId.1': 'i-1' } }, 'other_resource_type'],
    ['a failed call', { errorCode: 'Forbidden.RAM', resourceName: 'pcc-a' }, 'failed_call'],
    ['a key one of our replicas signs with', { userIdentity: { accessKeyId: 'STS.signed-by-a-replica' }, resourceName: 'pcc-a' }, 'own_call'],
    ['our own UnTagResources (counted as ours, not as another event)', { eventName: 'UnTagResources', userIdentity: { accessKeyId: 'STS.signed-by-a-replica' }, resourceName: 'pcc-a' }, 'own_call'],
    ['a listed access key', { userIdentity: { accessKeyId: 'LTAI-own' }, resourceName: 'pcc-a' }, 'own_call'],
    ['our own role session', { userIdentity: { arn: 'acs:ram::123:role/tagwarden/session-1' }, resourceName: 'pcc-a' }, 'own_call'],
    ['no connection named', { requestParameters: { ResourceType: 'PeerConnection' } }, 'no_resources'],
    ['a create without tags', { eventName: 'CreateVpcPeerConnection', requestParameters: { VpcId: 'vpc-1' }, responseElements: { InstanceId: 'pcc-a' } }, 'no_tags'],
  ])('ignores %s', (_name, data, reason) => {
    expect(act(data)).toEqual({ kind: 'ignore', reason });
  });

  it('acts on a tag write that only claims to be ours in its user agent (anyone can send one)', () => {
    const spoofed = act({ userAgent: 'AlibabaCloud Core/1.0.8 TeaDSL/2 tagwarden/1', userIdentity: { accessKeyId: 'LTAI-someone-else' }, resourceName: 'pcc-a' });
    expect(spoofed).toMatchObject({ kind: 'act', resourceIds: ['pcc-a'] });
  });

  it('ignores events that are not ActionTrail calls, and other accounts when accounts are listed', () => {
    expect(interpretEvent(event({ x: 1 }, { type: 'oss:ObjectCreated:PutObject', source: 'acs.oss' }), 'e', OPTIONS)).toEqual({ kind: 'ignore', reason: 'not_actiontrail' });
    const r = interpretEvent(event({ ...base, resourceName: 'pcc-a' }, { aliyunaccountid: '999' }), 'e', { ...OPTIONS, accountIds: ['111'] });
    expect(r).toEqual({ kind: 'ignore', reason: 'other_account' });
  });

  it('acts on a create with tags, from responseElements.InstanceId', () => {
    expect(act({ eventName: 'CreateVpcPeerConnection', requestParameters: { 'Tag.1.Key': 'tmp', 'Tag.1.Value': 'x' }, responseElements: { InstanceId: 'pcc-new' } })).toMatchObject({
      kind: 'act',
      resourceIds: ['pcc-new'],
    });
  });

  it('refuses hostile resource IDs and regions, naming the field', () => {
    expect(act({ resourceName: 'pcc-a,../../etc' })).toMatchObject({ kind: 'invalid', problems: [expect.stringMatching(/resource ID 2/)] });
    expect(act({ requestParameters: { ResourceId: Array.from({ length: 51 }, (_, i) => `pcc-${i}`) } })).toMatchObject({ kind: 'invalid' });
    expect(act({ acsRegion: 'x'.repeat(100), resourceName: 'pcc-a' })).toMatchObject({ kind: 'invalid', problems: [expect.stringMatching(/data\.acsRegion/)] });
    expect(interpretEvent(event({ eventType: 'ApiCall' }), 'events[4]', OPTIONS)).toEqual({ kind: 'invalid', problems: ['events[4].data.eventName: required in an ActionTrail event'] });
  });
});
