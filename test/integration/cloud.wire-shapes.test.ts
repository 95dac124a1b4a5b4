// The client against a bare loopback HTTP server: exact parameter placement (reference §1.1), paging,
// hooks, and what reaches an error message when a server echoes the request back.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CloudError, createCloudClient, type CloudApi, type CloudClientOptions, type CloudHooks } from '../../src/cloud/index.js';

interface Seen {
  readonly query: URLSearchParams;
  readonly form: URLSearchParams;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawUrl: string;
}
type Responder = (seen: Seen, req: http.IncomingMessage, res: http.ServerResponse) => void;

const SECRET = 'wire-test-secret-0123456789';
const TOKEN = 'wire-test-sts-token+/=abcdef';
let server: http.Server;
let endpoint: string;
let seen: Seen[] = [];
let respond: Responder;

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const entry = { query: url.searchParams, form: new URLSearchParams(Buffer.concat(chunks).toString()), headers: req.headers, rawUrl: req.url ?? '' };
      seen.push(entry);
      respond(entry, req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  seen = [];
  respond = (_s, _q, res) => json(res, 200, { RequestId: 'ok-1', Success: true });
});

function client(overrides: Partial<CloudClientOptions> = {}, hooks?: CloudHooks): CloudApi {
  return createCloudClient(
    {
      endpoint,
      connectTimeoutMs: 2000,
      readTimeoutMs: 2000,
      signatureVersion: 'v3',
      credentials: { accessKeyId: 'wire-ak', accessKeySecret: SECRET },
      ...overrides,
    },
    hooks,
  );
}

async function failureOf(p: Promise<unknown>): Promise<CloudError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CloudError);
    return err as CloudError;
  }
  throw new Error('expected a CloudError');
}

const peer = (i: number): Record<string, unknown> => ({
  InstanceId: `pcc-${i}`,
  Name: `peer-${i}`,
  Description: 'd',
  Status: 'Activated',
  RegionId: 'cn-hangzhou',
  AcceptingRegionId: 'cn-shanghai',
  ResourceGroupId: 'rg-1',
  Vpc: { VpcId: `vpc-${i}` },
  AcceptingVpc: { VpcId: `vpc-acc-${i}` },
  Tags: [{ Key: 'owner', Value: 'ops' }, { Key: 'empty', Value: null }],
});

describe('ListVpcPeerConnections', () => {
  it('puts Tags and ResourceGroupId in the query, the rest in the form body, VpcId comma-joined, and pages', async () => {
    respond = (s, _q, res) => {
      const token = s.form.get('NextToken');
      const page = token === null ? 0 : Number(token.slice(1));
      json(res, 200, {
        RequestId: `req-${page}`,
        VpcPeerConnects: [peer(page)],
        ...(page < 2 ? { NextToken: `t${page + 1}` } : { NextToken: '' }),
      });
    };
    const pages = [];
    for await (const page of client().listPeerConnections('cn-hangzhou', {
      vpcIds: ['vpc-a', 'vpc-b'],
      name: 'peer',
      instanceId: 'pcc-0',
      resourceGroupId: 'rg-1',
      tags: [{ key: 'env', value: 'prod' }, { key: 'owner' }],
    })) {
      pages.push(page);
    }
    expect(pages.map((p) => p.requestId)).toEqual(['req-0', 'req-1', 'req-2']);
    expect(pages.map((p) => p.nextToken)).toEqual(['t1', 't2', undefined]);
    expect(pages[0]?.items[0]).toEqual({
      id: 'pcc-0',
      region: 'cn-hangzhou',
      tags: { owner: 'ops', empty: '' },
      attributes: {
        name: 'peer-0',
        status: 'Activated',
        vpcId: 'vpc-0',
        acceptingVpcId: 'vpc-acc-0',
        acceptingRegionId: 'cn-shanghai',
        resourceGroupId: 'rg-1',
        description: 'd',
      },
    });
    const first = seen[0]!;
    expect(first.headers['x-acs-action']).toBe('ListVpcPeerConnections');
    expect(first.headers['authorization']).toMatch(/^ACS3-HMAC-SHA256 Credential=wire-ak,/);
    expect(Object.fromEntries(first.query)).toEqual({
      'Tags.1.Key': 'env',
      'Tags.1.Value': 'prod',
      'Tags.2.Key': 'owner',
      ResourceGroupId: 'rg-1',
    });
    expect(Object.fromEntries(first.form)).toEqual({
      RegionId: 'cn-hangzhou',
      MaxResults: '100',
      InstanceId: 'pcc-0',
      Name: 'peer',
      VpcId: 'vpc-a,vpc-b',
    });
    expect(seen.map((s) => s.form.get('NextToken'))).toEqual([null, 't1', 't2']);
  });

  it('resumes from a start token and stops on a token that repeats', async () => {
    respond = (_s, _q, res) => json(res, 200, { RequestId: 'r', VpcPeerConnects: [], NextToken: 'same' });
    const iterator = client().listPeerConnections('cn-hangzhou', { maxResults: 5 }, 'same');
    const err = await failureOf(iterator[Symbol.asyncIterator]().next());
    expect(err.failure).toMatchObject({ kind: 'transient', code: 'BadResponse' });
    expect(seen[0]?.form.get('NextToken')).toBe('same');
    expect(seen[0]?.form.get('MaxResults')).toBe('5');
  });
});

describe('tag operations', () => {
  it('ListTagResources sends everything in the query and reads both list shapes', async () => {
    let call = 0;
    respond = (_s, _q, res) => {
      call++;
      const row = { ResourceId: 'pcc-1', ResourceType: 'PeerConnection', TagKey: `k${call}`, TagValue: 'v' };
      json(res, 200, call === 1 ? { RequestId: 'a', TagResources: [row], NextToken: 'n2' } : { RequestId: 'b', TagResources: { TagResource: [row] } });
    };
    const rows = [];
    for await (const page of client().listTagResources('cn-shanghai', { resourceIds: ['pcc-1', 'pcc-2'], tagKeys: ['env'] })) {
      rows.push(...page.items);
    }
    expect(rows).toEqual([
      { resourceId: 'pcc-1', tagKey: 'k1', tagValue: 'v' },
      { resourceId: 'pcc-1', tagKey: 'k2', tagValue: 'v' },
    ]);
    expect(Object.fromEntries(seen[0]!.query)).toEqual({
      RegionId: 'cn-shanghai',
      ResourceType: 'PeerConnection',
      'ResourceId.1': 'pcc-1',
      'ResourceId.2': 'pcc-2',
      'Tag.1.Key': 'env',
      MaxResults: '50',
    });
    expect(seen[0]!.form.toString()).toBe('');
    expect(seen[1]!.query.get('NextToken')).toBe('n2');
  });

  it('UnTagResources sends keys, or All=true without keys, with the ClientToken', async () => {
    const api = client();
    await api.untagResources({ region: 'cn-hangzhou', resourceIds: ['pcc-1'], tagKeys: ['a', 'b c*~'], all: false, clientToken: 'tok-1' });
    await api.untagResources({ region: 'cn-hangzhou', resourceIds: ['pcc-1', 'pcc-2'], tagKeys: ['ignored'], all: true, clientToken: 'tok-2' });
    expect(Object.fromEntries(seen[0]!.query)).toEqual({
      RegionId: 'cn-hangzhou',
      ResourceType: 'PeerConnection',
      'ResourceId.1': 'pcc-1',
      'TagKey.1': 'a',
      'TagKey.2': 'b c*~',
      All: 'false',
      ClientToken: 'tok-1',
    });
    expect(Object.fromEntries(seen[1]!.query)).toEqual({
      RegionId: 'cn-hangzhou',
      ResourceType: 'PeerConnection',
      'ResourceId.1': 'pcc-1',
      'ResourceId.2': 'pcc-2',
      All: 'true',
      ClientToken: 'tok-2',
    });
  });

  it('TagResources sends Tag.N.Key/Value in the query', async () => {
    await client().tagResources({ region: 'cn-hangzhou', resourceIds: ['pcc-1'], tags: { env: 'prod', empty: '' }, clientToken: 't' });
    expect(Object.fromEntries(seen[0]!.query)).toMatchObject({
      'Tag.1.Key': 'env',
      'Tag.1.Value': 'prod',
      'Tag.2.Key': 'empty',
      'Tag.2.Value': '',
      ClientToken: 't',
    });
  });

  it('refuses malformed requests without sending them', async () => {
    const api = client();
    const ids = Array.from({ length: 21 }, (_, i) => `pcc-${i}`);
    const errors = await Promise.all([
      failureOf(api.untagResources({ region: 'r', resourceIds: ids, tagKeys: ['k'], all: false, clientToken: 't' })),
      failureOf(api.untagResources({ region: 'r', resourceIds: ['pcc-1'], tagKeys: [], all: false, clientToken: 't' })),
      failureOf(api.untagResources({ region: 'r', resourceIds: ['pcc-1'], tagKeys: ['k'], all: false, clientToken: 'ü' })),
      failureOf(api.tagResources({ region: 'r', resourceIds: ['pcc-1'], tags: {} })),
      failureOf(api.listTagResources('r', {})[Symbol.asyncIterator]().next()),
    ]);
    for (const err of errors) expect(err.failure).toMatchObject({ kind: 'permanent', code: 'InvalidRequest' });
    expect(seen).toHaveLength(0);
  });
});

describe('GetVpcPeerConnectionAttribute', () => {
  it('sends InstanceId in the form body and maps the connection', async () => {
    respond = (_s, _q, res) => json(res, 200, { RequestId: 'g', ...peer(7) });
    const resource = await client().getPeerConnection('cn-hangzhou', 'pcc-7');
    expect(resource?.id).toBe('pcc-7');
    expect(resource?.tags).toEqual({ owner: 'ops', empty: '' });
    expect(Object.fromEntries(seen[0]!.form)).toEqual({ InstanceId: 'pcc-7' });
  });

  it('returns null on ResourceNotFound.InstanceId', async () => {
    respond = (_s, _q, res) => json(res, 400, { RequestId: 'nf', Code: 'ResourceNotFound.InstanceId', Message: 'not found' });
    expect(await client().getPeerConnection('cn-hangzhou', 'pcc-x')).toBeNull();
  });
});

describe('signatures, hooks and failures on the wire', () => {
  it('V2 signs in the query with HMAC-SHA1 and no Authorization header', async () => {
    await client({ signatureVersion: 'v2' }).untagResources({ region: 'cn-hangzhou', resourceIds: ['pcc-1'], tagKeys: ['k'], all: false, clientToken: 't' });
    const s = seen[0]!;
    expect(s.query.get('Action')).toBe('UnTagResources');
    expect(s.query.get('Version')).toBe('2022-01-01');
    expect(s.query.get('SignatureMethod')).toBe('HMAC-SHA1');
    expect(s.query.get('AccessKeyId')).toBe('wire-ak');
    expect(s.query.get('Signature')).toBeTruthy();
    expect(s.headers['authorization']).toBeUndefined();
  });

  it('awaits before() ahead of every request and reports each outcome to after()', async () => {
    const events: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    respond = (s, _q, res) => {
      events.push('http');
      if (s.query.get('ResourceId.1') === 'pcc-throttled') {
        json(res, 400, { RequestId: 'th', Code: 'Throttling.User', Message: 'slow down' }, { 'x-acs-retry-after': '1200' });
      } else json(res, 200, { RequestId: 'ok', Success: true });
    };
    const outcomes: unknown[] = [];
    const api = client({}, {
      before: async (api, region) => {
        events.push(`before ${api} ${region}`);
        await gate;
      },
      after: (api, region, outcome) => {
        events.push(`after ${outcome.code}`);
        outcomes.push({ api, region, ...outcome });
      },
    });
    const pending = api.untagResources({ region: 'cn-hangzhou', resourceIds: ['pcc-1'], tagKeys: ['k'], all: false, clientToken: 't' });
    await new Promise((r) => setImmediate(r));
    expect(seen).toHaveLength(0);
    release();
    await pending;
    const err = await failureOf(api.untagResources({ region: 'cn-beijing', resourceIds: ['pcc-throttled'], tagKeys: ['k'], all: false, clientToken: 't' }));
    expect(err.failure).toMatchObject({ kind: 'throttled', code: 'Throttling.User', httpStatus: 400, retryAfterMs: 1200, requestId: 'th' });
    expect(events).toEqual([
      'before UnTagResources cn-hangzhou', 'http', 'after OK',
      'before UnTagResources cn-beijing', 'http', 'after Throttling.User',
    ]);
    expect(outcomes[0]).toMatchObject({ api: 'UnTagResources', region: 'cn-hangzhou', code: 'OK' });
    expect(outcomes[0]).not.toHaveProperty('failure');
    expect(outcomes[1]).toMatchObject({ code: 'Throttling.User', failure: { kind: 'throttled' } });
    for (const o of outcomes) expect((o as { seconds: number }).seconds).toBeGreaterThanOrEqual(0);
  });

  it('a failing before() becomes a transient CloudError and sends nothing', async () => {
    const api = client({}, { before: () => Promise.reject(new Error('redis down')) });
    const err = await failureOf(api.untagResources({ region: 'r', resourceIds: ['pcc-1'], tagKeys: ['k'], all: false, clientToken: 't' }));
    expect(err.failure).toMatchObject({ kind: 'transient', code: 'HookFailed' });
    expect(seen).toHaveLength(0);
  });

  it('classifies a read timeout, Success=false and a non-object body as transient', async () => {
    respond = () => undefined; // never answers; the client gives up
    const slow = await failureOf(client({ readTimeoutMs: 150 }).untagResources({ region: 'r', resourceIds: ['pcc-1'], tagKeys: ['k'], all: false, clientToken: 't' }));
    expect(slow.failure).toMatchObject({ kind: 'transient', code: 'Timeout' });
    server.closeAllConnections();

    respond = (_s, _q, res) => json(res, 200, { RequestId: 'x', Success: false });
    const unsuccessful = await failureOf(client().untagResources({ region: 'r', resourceIds: ['pcc-1'], tagKeys: ['k'], all: false, clientToken: 't' }));
    expect(unsuccessful.failure.kind).toBe('transient');

    respond = (_s, _q, res) => json(res, 200, ['not', 'an', 'object']);
    const odd = await failureOf(client().untagResources({ region: 'r', resourceIds: ['pcc-1'], tagKeys: ['k'], all: false, clientToken: 't' }));
    expect(odd.failure).toMatchObject({ kind: 'transient', code: 'BadResponse' });
  });

  it('never lets the secret, the STS token or the signature into an error, even when the server echoes them', async () => {
    respond = (s, _q, res) =>
      json(res, 403, {
        RequestId: 'echo',
        Code: 'SignatureDoesNotMatch',
        Message: `you sent ${s.rawUrl} with Authorization: ${String(s.headers['authorization'])} token ${String(s.headers['x-acs-security-token'])} secret ${SECRET}`,
      });
    for (const signatureVersion of ['v3', 'v2'] as const) {
      seen = [];
      const api = client({ signatureVersion, credentials: { accessKeyId: 'wire-ak', accessKeySecret: SECRET, securityToken: TOKEN } });
      const err = await failureOf(api.untagResources({ region: 'r', resourceIds: ['pcc-1'], tagKeys: ['k'], all: false, clientToken: 't' }));
      expect(err.failure.kind).toBe('auth');
      const sentSignature =
        signatureVersion === 'v2'
          ? seen[0]!.query.get('Signature')!
          : /Signature=([0-9a-f]+)/.exec(String(seen[0]!.headers['authorization']))![1]!;
      const text = JSON.stringify({ message: err.message, details: err.details, stack: err.stack, failure: err.failure });
      for (const leaked of [SECRET, TOKEN, encodeURIComponent(TOKEN), sentSignature, encodeURIComponent(sentSignature)]) {
        expect(text).not.toContain(leaked);
      }
    }
  });
});
