// One contract for the cloud client, run against the emulator over HTTP and, only when
// TAGWARDEN_CONTRACT_LIVE=1 and real credentials are given, against the real VpcPeer API.
//
// Live variant (never in CI) needs: ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET,
// TAGWARDEN_CONTRACT_REGION, TAGWARDEN_CONTRACT_PEER_IDS (>= 2 connections in that region the suite may
// tag with its own `tw-contract-*` keys and untag again). Optional: TAGWARDEN_CONTRACT_SCRATCH_ID (a
// connection whose every tag may be removed, enables the untag-all test), TAGWARDEN_CONTRACT_ENDPOINT.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CloudError,
  createCloudClient,
  type CloudApi,
  type CloudClientOptions,
  type CloudFailure,
  type CloudHooks,
  type FailureKind,
} from '../../src/cloud/index.js';
import {
  createEmulatorAdmin,
  startEmulator,
  type EmulatorAdmin,
  type EmulatorResource,
  type FaultConfig,
  type RunningEmulator,
} from '../../src/emulator/index.js';
import { CENTRAL_QUOTA_REGION, type ApiName, type Resource } from '../../src/model.js';

type Credentials = NonNullable<CloudClientOptions['credentials']>;

interface ContractTarget {
  readonly name: string;
  region: string;
  endpoint: string;
  credentials: Credentials;
  /** Connections the suite may tag with its own keys and untag again. */
  peerIds: readonly string[];
  /** A connection whose every tag the suite may remove, when there is one. */
  scratchId?: string;
  /** Page size that makes the region span several pages, and how many pages that gives at least. */
  pageSize: number;
  minPages: number;
  /** The connections of the region, when the target can say (emulator). */
  expectedIds?: () => Promise<readonly string[]>;
  /** Regions of the endpoint metadata the service must answer (not all may be open to every account). */
  metadataRegions: readonly string[];
  /** A region other than `region`, for the facts about IDs of another region. */
  otherRegion: string;
  /** STS credentials (with a security token) the service accepts, when there are some. */
  stsCredentials?: Credentials;
  /** The emulator knows the exact values of LinkType and ManagedService; the live account may not. */
  expectedLinkType?: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const RUN = randomUUID().slice(0, 8);
const KEY_A = `tw-contract-${RUN}-a`;
const KEY_B = `tw-contract-${RUN}-b`;
const token = (): string => `tw-ct-${randomUUID()}`;

function clientFor(target: ContractTarget, overrides: Partial<CloudClientOptions> = {}, hooks?: CloudHooks): CloudApi {
  return createCloudClient(
    {
      endpoint: target.endpoint,
      connectTimeoutMs: 5000,
      readTimeoutMs: 10_000,
      signatureVersion: 'v3',
      credentials: target.credentials,
      ...overrides,
    },
    hooks,
  );
}

async function collect<T>(pages: AsyncIterable<{ items: readonly T[] }>): Promise<T[]> {
  const out: T[] = [];
  for await (const page of pages) out.push(...page.items);
  return out;
}

async function failureOf(p: Promise<unknown>): Promise<CloudFailure> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CloudError);
    return (err as CloudError).failure;
  }
  throw new Error('expected the call to fail with a CloudError');
}

async function tagsOf(api: CloudApi, region: string, ids: readonly string[]): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = Object.fromEntries(ids.map((id) => [id, {}]));
  for (const row of await collect(api.listTagResources(region, { resourceIds: ids }))) {
    (out[row.resourceId] ??= {})[row.tagKey] = row.tagValue;
  }
  return out;
}

const ENV_KEYS = [
  'ALIBABA_CLOUD_ACCESS_KEY_ID', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET', 'ALIBABA_CLOUD_SECURITY_TOKEN', 'HOME',
  'ALIBABA_CLOUD_ECS_METADATA_DISABLED', 'ALIBABA_CLOUD_CLI_PROFILE_DISABLED', 'ALIBABA_CLOUD_PROFILE',
  'ALIBABA_CLOUD_CREDENTIALS_FILE', 'ALIBABA_CLOUD_ROLE_ARN', 'ALIBABA_CLOUD_OIDC_PROVIDER_ARN',
  'ALIBABA_CLOUD_OIDC_TOKEN_FILE', 'ALIBABA_CLOUD_CREDENTIALS_URI',
] as const;

/** Runs `fn` with only the given credentials in the environment, HOME in a fresh temp dir, ECS metadata off. */
async function withCredentialEnv<T>(creds: Credentials | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  const home = mkdtempSync(path.join(tmpdir(), 'tw-contract-home-'));
  try {
    for (const k of ENV_KEYS) delete process.env[k];
    process.env['HOME'] = home;
    process.env['ALIBABA_CLOUD_ECS_METADATA_DISABLED'] = 'true';
    process.env['ALIBABA_CLOUD_CLI_PROFILE_DISABLED'] = 'true';
    if (creds) {
      process.env['ALIBABA_CLOUD_ACCESS_KEY_ID'] = creds.accessKeyId;
      process.env['ALIBABA_CLOUD_ACCESS_KEY_SECRET'] = creds.accessKeySecret;
      if (creds.securityToken) process.env['ALIBABA_CLOUD_SECURITY_TOKEN'] = creds.securityToken;
    }
    return await fn();
  } finally {
    for (const k of ENV_KEYS) {
      const v = saved[k];
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(home, { recursive: true, force: true });
  }
}

function contractSuite(target: ContractTarget): void {
  describe(`cloud contract: ${target.name}`, () => {
    let api: CloudApi;

    beforeAll(async () => {
      await target.start();
      api = clientFor(target);
    });

    afterAll(async () => {
      // Remove the suite's own keys wherever a failed test may have left them.
      try {
        await api.untagResources({ region: target.region, resourceIds: target.peerIds, tagKeys: [KEY_A, KEY_B], all: false, clientToken: token() });
      } finally {
        await target.stop();
      }
    });

    describe('ListVpcPeerConnections', () => {
      it('pages across many pages without duplicates or gaps, and resumes from a token', async () => {
        const pages: { ids: string[]; nextToken: string | undefined }[] = [];
        for await (const page of api.listPeerConnections(target.region, { maxResults: target.pageSize })) {
          expect(page.items.length).toBeLessThanOrEqual(target.pageSize);
          expect(page.requestId).not.toBe('');
          pages.push({ ids: page.items.map((r) => r.id), nextToken: page.nextToken });
        }
        expect(pages.length).toBeGreaterThanOrEqual(target.minPages);
        expect(pages.slice(0, -1).every((p) => p.nextToken !== undefined)).toBe(true);
        expect(pages.at(-1)?.nextToken).toBeUndefined();
        const all = pages.flatMap((p) => p.ids);
        expect(new Set(all).size).toBe(all.length);
        if (target.expectedIds) expect([...all].sort()).toEqual([...(await target.expectedIds())].sort());
        for (const id of target.peerIds) expect(all).toContain(id);

        const resumed = await collect(api.listPeerConnections(target.region, { maxResults: target.pageSize }, pages[0]?.nextToken));
        expect(resumed.map((r) => r.id)).toEqual(all.slice(pages[0]?.ids.length));
      });

      it('filters by instance, VPC (either side), name and tags', async () => {
        const [id] = target.peerIds;
        const subject = (await collect(api.listPeerConnections(target.region, { instanceId: id! }))) as Resource[];
        expect(subject.map((r) => r.id)).toEqual([id]);
        const peer = subject[0]!;

        const vpcId = peer.attributes.vpcId!;
        const byVpc = await collect(api.listPeerConnections(target.region, { vpcIds: [vpcId] }));
        expect(byVpc.map((r) => r.id)).toContain(id);
        for (const r of byVpc) expect([r.attributes.vpcId, r.attributes.acceptingVpcId]).toContain(vpcId);
        if (peer.attributes.acceptingVpcId !== undefined) {
          const acceptingSide = await collect(api.listPeerConnections(target.region, { vpcIds: [peer.attributes.acceptingVpcId] }));
          expect(acceptingSide.map((r) => r.id)).toContain(id);
        }

        if (peer.attributes.name !== undefined) {
          const byName = await collect(api.listPeerConnections(target.region, { name: peer.attributes.name }));
          expect(byName.map((r) => r.id)).toContain(id);
          for (const r of byName) expect(r.attributes.name).toBe(peer.attributes.name);
        }

        await api.tagResources({ region: target.region, resourceIds: [id!], tags: { [KEY_A]: 'filter' }, clientToken: token() });
        const byTag = await collect(api.listPeerConnections(target.region, { tags: [{ key: KEY_A, value: 'filter' }] }));
        expect(byTag.map((r) => r.id)).toEqual([id]);
        const byKey = await collect(api.listPeerConnections(target.region, { tags: [{ key: KEY_A }] }));
        expect(byKey.map((r) => r.id)).toEqual([id]);
        const wrongValue = await collect(api.listPeerConnections(target.region, { tags: [{ key: KEY_A, value: 'other' }] }));
        expect(wrongValue).toEqual([]);
        await api.untagResources({ region: target.region, resourceIds: [id!], tagKeys: [KEY_A], all: false, clientToken: token() });
      });

      it('getPeerConnection returns the connection, and null for an unknown ID', async () => {
        const [id] = target.peerIds;
        const peer = await api.getPeerConnection(target.region, id!);
        expect(peer?.id).toBe(id);
        const listed = await collect(api.listPeerConnections(target.region, { instanceId: id! }));
        expect(peer?.tags).toEqual(listed[0]?.tags);
        expect(await api.getPeerConnection(target.region, 'pcc-tagwardendoesnotexist0')).toBeNull();
      });
    });

    describe('tags', () => {
      it('ListTagResources by IDs agrees with ListVpcPeerConnections, and by key finds the carriers', async () => {
        const ids = target.peerIds.slice(0, 2);
        await api.tagResources({ region: target.region, resourceIds: ids, tags: { [KEY_B]: 'v' }, clientToken: token() });
        const byId = await tagsOf(api, target.region, ids);
        const listed = await collect(api.listPeerConnections(target.region, { tags: [{ key: KEY_B }] }));
        expect(listed.map((r) => r.id).sort()).toEqual([...ids].sort());
        for (const r of listed) expect(byId[r.id]).toEqual(r.tags);

        const rows = await collect(api.listTagResources(target.region, { tagKeys: [KEY_B], maxResults: 1 }));
        expect(rows.map((r) => r.resourceId).sort()).toEqual([...ids].sort());
        for (const row of rows) expect(row).toMatchObject({ tagKey: KEY_B, tagValue: 'v' });
        await api.untagResources({ region: target.region, resourceIds: ids, tagKeys: [KEY_B], all: false, clientToken: token() });
        expect(await collect(api.listTagResources(target.region, { tagKeys: [KEY_B] }))).toEqual([]);
      });

      it('UnTagResources removes only the named keys, and removing an absent key is fine', async () => {
        const ids = target.peerIds.slice(0, 2);
        const before = await tagsOf(api, target.region, ids);
        await api.tagResources({ region: target.region, resourceIds: ids, tags: { [KEY_A]: '1', [KEY_B]: '2' }, clientToken: token() });
        await api.untagResources({ region: target.region, resourceIds: ids, tagKeys: [KEY_A], all: false, clientToken: token() });
        const after = await tagsOf(api, target.region, ids);
        for (const id of ids) expect(after[id]).toEqual({ ...before[id], [KEY_B]: '2' });
        await api.untagResources({ region: target.region, resourceIds: ids, tagKeys: [KEY_A, KEY_B], all: false, clientToken: token() });
        expect(await tagsOf(api, target.region, ids)).toEqual(before);
      });

      // Union packing (src/planner) relies on this: one call may name keys some of its resources lack.
      it('a call naming keys only some of its resources carry succeeds and removes each where it is', async () => {
        const [first, second] = target.peerIds;
        const before = await tagsOf(api, target.region, [first!, second!]);
        await api.tagResources({ region: target.region, resourceIds: [first!], tags: { [KEY_A]: 'only-first' }, clientToken: token() });
        await api.tagResources({ region: target.region, resourceIds: [second!], tags: { [KEY_B]: 'only-second' }, clientToken: token() });
        const answer = await api.untagResources({ region: target.region, resourceIds: [first!, second!], tagKeys: [KEY_A, KEY_B], all: false, clientToken: token() });
        expect(answer.requestId).toBeTruthy();
        expect(await tagsOf(api, target.region, [first!, second!])).toEqual(before);
      });

      if (target.scratchId !== undefined) {
        const scratch = target.scratchId;
        it('UnTagResources with All=true removes every tag', async () => {
          await api.tagResources({ region: target.region, resourceIds: [scratch], tags: { [KEY_A]: 'x', [KEY_B]: 'y' }, clientToken: token() });
          await api.untagResources({ region: target.region, resourceIds: [scratch], tagKeys: [], all: true, clientToken: token() });
          expect(await tagsOf(api, target.region, [scratch])).toEqual({ [scratch]: {} });
        });
      }

      it('replays a ClientToken with the same parameters and refuses it with different ones', async () => {
        const [id] = target.peerIds;
        await api.tagResources({ region: target.region, resourceIds: [id!], tags: { [KEY_A]: 'r' }, clientToken: token() });
        const t = token();
        const req = { region: target.region, resourceIds: [id!], tagKeys: [KEY_A], all: false, clientToken: t };
        await api.untagResources(req);
        await api.tagResources({ region: target.region, resourceIds: [id!], tags: { [KEY_A]: 'again' }, clientToken: token() });
        // Same token, same parameters: answered from the first call, the key added since stays.
        await api.untagResources(req);
        expect((await tagsOf(api, target.region, [id!]))[id!]?.[KEY_A]).toBe('again');
        const mismatch = await failureOf(api.untagResources({ ...req, tagKeys: [KEY_B] }));
        expect(mismatch).toMatchObject({ kind: 'permanent', code: 'IdempotentParameterMismatch' });
        await api.untagResources({ ...req, clientToken: token() });
      });

      it('classifies unknown IDs as not-found', async () => {
        const failure = await failureOf(
          api.untagResources({ region: target.region, resourceIds: ['pcc-tagwardendoesnotexist0'], tagKeys: [KEY_A], all: false, clientToken: token() }),
        );
        expect(failure).toMatchObject({ kind: 'not-found', code: 'InvalidInstanceIds.NotFound' });
        expect(failure.requestId).toBeTruthy();
      });
    });

    // One case per fact of src/emulator/API-FACTS.md that both the emulator and the live service can show.
    describe('API facts', () => {
      it('regions: the endpoint metadata\'s regions are served, Mumbai (ap-south-1) included', async () => {
        for (const region of target.metadataRegions) {
          const pages = api.listPeerConnections(region, { maxResults: 1 });
          for await (const page of pages) {
            expect(page.requestId).not.toBe('');
            break;
          }
        }
      });

      it('Get is central: asked from another region it answers with the connection\'s own region; UnTag there does not know it', async () => {
        const [id] = target.peerIds;
        const peer = await api.getPeerConnection(target.otherRegion, id!);
        expect(peer?.id).toBe(id);
        expect(peer?.region).toBe(target.region);
        const elsewhere = await failureOf(
          api.untagResources({ region: target.otherRegion, resourceIds: [id!], tagKeys: [KEY_A], all: false, clientToken: token() }),
        );
        expect(elsewhere).toMatchObject({ kind: 'not-found', code: 'InvalidInstanceIds.NotFound' });
      });

      it('List and Get carry LinkType and ManagedService, and agree on them', async () => {
        const [id] = target.peerIds;
        const got = await api.getPeerConnection(target.region, id!);
        const [listed] = await collect(api.listPeerConnections(target.region, { instanceId: id! }));
        expect(listed?.attributes.linkType).toBe(got?.attributes.linkType);
        expect(listed?.attributes.managedService).toBe(got?.attributes.managedService);
        if (target.expectedLinkType !== undefined) expect(got?.attributes.linkType).toBe(target.expectedLinkType);
      });

      it('TagResources takes an empty Value; ListTagResources Category separates custom from system tags', async () => {
        const [id] = target.peerIds;
        await api.tagResources({ region: target.region, resourceIds: [id!], tags: { [KEY_A]: '' }, clientToken: token() });
        const rows = (category?: 'All' | 'Custom' | 'System') =>
          collect(api.listTagResources(target.region, { resourceIds: [id!], ...(category ? { category } : {}) }));
        const all = await rows();
        expect(all.find((r) => r.tagKey === KEY_A)).toMatchObject({ tagValue: '' });
        expect((await rows('All')).map((r) => r.tagKey).sort()).toEqual(all.map((r) => r.tagKey).sort());
        const custom = await rows('Custom');
        const system = await rows('System');
        expect(custom.map((r) => r.tagKey)).toContain(KEY_A);
        expect(system.map((r) => r.tagKey)).not.toContain(KEY_A);
        for (const r of system) expect(r.tagKey).toMatch(/^(acs:|aliyun)/);
        expect([...custom, ...system].map((r) => r.tagKey).sort()).toEqual(all.map((r) => r.tagKey).sort());
        await api.untagResources({ region: target.region, resourceIds: [id!], tagKeys: [KEY_A], all: false, clientToken: token() });
      });

      it('ListVpcPeerConnections with more Tags filters than the metadata\'s 10 still filters by every one', async () => {
        const [id, other] = target.peerIds;
        const keys = Array.from({ length: 11 }, (_, i) => `${KEY_B}-${String(i).padStart(2, '0')}`);
        const tags = Object.fromEntries(keys.map((k) => [k, 'v']));
        await api.tagResources({ region: target.region, resourceIds: [id!, other!], tags, clientToken: token() });
        // The other connection lacks only the 11th key: a filter that ignored it would list both.
        await api.untagResources({ region: target.region, resourceIds: [other!], tagKeys: [keys[10]!], all: false, clientToken: token() });
        try {
          const found = await collect(api.listPeerConnections(target.region, { tags: keys.map((key) => ({ key, value: 'v' })) }));
          expect(found.map((r) => r.id)).toEqual([id]);
        } finally {
          await api.untagResources({ region: target.region, resourceIds: [id!, other!], tagKeys: keys, all: false, clientToken: token() });
        }
      });

      it('ListTagResources refuses a tag key with a URL in it as permanent (InvalidTagKey)', async () => {
        const failure = await failureOf(collect(api.listTagResources(target.region, { tagKeys: ['tw-contract-http://x'] })));
        expect(failure.kind).toBe('permanent');
        expect(failure.code).toMatch(/^(InvalidTagKey|IllegalParam\.TagKey)$/);
        if (target.name === 'emulator') expect(failure.code).toBe('InvalidTagKey');
      });

      if (target.stsCredentials !== undefined) {
        const sts = target.stsCredentials;
        it('STS credentials are accepted with their own security token and refused with another', async () => {
          expect((await clientFor(target, { credentials: sts }).getPeerConnection(target.region, target.peerIds[0]!))?.id).toBe(target.peerIds[0]);
          const wrong = await failureOf(
            clientFor(target, { credentials: { ...sts, securityToken: `${sts.securityToken ?? ''}x` } }).getPeerConnection(target.region, target.peerIds[0]!),
          );
          expect(wrong.kind).toBe('auth');
          expect(wrong.code).toMatch(/SecurityToken/);
        });
      }
    });

    describe.each(['v3', 'v2'] as const)('signature %s', (signatureVersion) => {
      it('lists and untags', async () => {
        const signed = clientFor(target, { signatureVersion });
        const [id] = target.peerIds;
        const pages = [];
        for await (const page of signed.listPeerConnections(target.region, { maxResults: target.pageSize })) {
          pages.push(page);
          if (pages.length === 2) break;
        }
        expect(pages).toHaveLength(2);
        await signed.tagResources({ region: target.region, resourceIds: [id!], tags: { [KEY_A]: signatureVersion }, clientToken: token() });
        expect((await tagsOf(signed, target.region, [id!]))[id!]?.[KEY_A]).toBe(signatureVersion);
        await signed.untagResources({ region: target.region, resourceIds: [id!], tagKeys: [KEY_A], all: false, clientToken: token() });
      });

      it('a wrong secret or an unknown key is auth', async () => {
        const wrongSecret = clientFor(target, {
          signatureVersion,
          credentials: { accessKeyId: target.credentials.accessKeyId, accessKeySecret: 'definitely-not-the-secret' },
        });
        const failure = await failureOf(wrongSecret.getPeerConnection(target.region, target.peerIds[0]!));
        expect(failure).toMatchObject({ kind: 'auth', code: 'SignatureDoesNotMatch' });
        expect(failure.message).not.toContain('definitely-not-the-secret');
        const unknownKey = clientFor(target, {
          signatureVersion,
          credentials: { accessKeyId: 'LTAItagwardenNoSuchKey', accessKeySecret: 'definitely-not-the-secret' },
        });
        const unknown = await failureOf(unknownKey.getPeerConnection(target.region, target.peerIds[0]!));
        expect(unknown.kind).toBe('auth');
        expect(unknown.code).toMatch(/^InvalidAccessKeyId/);
      });
    });

    it('calls the hooks once per HTTP request, with the outcome code', async () => {
      const events: { phase: string; api: ApiName; region: string; code?: string; kind?: FailureKind }[] = [];
      const hooked = clientFor(target, {}, {
        before: async (a, region) => {
          events.push({ phase: 'before', api: a, region });
        },
        after: (a, region, outcome) => {
          events.push({ phase: 'after', api: a, region, code: outcome.code, ...(outcome.failure ? { kind: outcome.failure.kind } : {}) });
        },
      });
      let pages = 0;
      for await (const _page of hooked.listPeerConnections(target.region, { maxResults: target.pageSize })) {
        if (++pages === 3) break;
      }
      expect(await hooked.getPeerConnection(target.region, 'pcc-tagwardendoesnotexist0')).toBeNull();
      expect(events).toEqual([
        { phase: 'before', api: 'ListVpcPeerConnections', region: target.region },
        { phase: 'after', api: 'ListVpcPeerConnections', region: target.region, code: 'OK' },
        { phase: 'before', api: 'ListVpcPeerConnections', region: target.region },
        { phase: 'after', api: 'ListVpcPeerConnections', region: target.region, code: 'OK' },
        { phase: 'before', api: 'ListVpcPeerConnections', region: target.region },
        { phase: 'after', api: 'ListVpcPeerConnections', region: target.region, code: 'OK' },
        // GetVpcPeerConnectionAttribute has no RegionId: it spends the account's one central quota bucket.
        { phase: 'before', api: 'GetVpcPeerConnectionAttribute', region: CENTRAL_QUOTA_REGION },
        {
          phase: 'after', api: 'GetVpcPeerConnectionAttribute', region: CENTRAL_QUOTA_REGION,
          code: 'ResourceNotFound.InstanceId', kind: 'not-found',
        },
      ]);
    });

    it('takes credentials from the environment through the default chain', async () => {
      const viaEnv = await withCredentialEnv(target.credentials, async () => {
        const envClient = createCloudClient({ endpoint: target.endpoint, connectTimeoutMs: 5000, readTimeoutMs: 10_000, signatureVersion: 'v3' });
        return envClient.getPeerConnection(target.region, target.peerIds[0]!);
      });
      expect(viaEnv?.id).toBe(target.peerIds[0]);

      const none = await withCredentialEnv(undefined, async () => {
        const bare = createCloudClient({ endpoint: target.endpoint, connectTimeoutMs: 5000, readTimeoutMs: 10_000, signatureVersion: 'v3' });
        return failureOf(bare.getPeerConnection(target.region, target.peerIds[0]!));
      });
      expect(none).toMatchObject({ kind: 'auth', code: 'CredentialsUnavailable' });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The emulator target, plus what only an emulator can show: each injected failure, classified.

const EMULATOR_REGION = 'cn-hangzhou';
const EMULATOR_FIXTURE: EmulatorResource[] = [
  { id: 'pcc-contracta0000000001', region: EMULATOR_REGION, tags: { team: 'blue', env: 'prod' }, name: 'contract-a', vpcId: 'vpc-contract1', acceptingVpcId: 'vpc-contract2', acceptingRegionId: EMULATOR_REGION, status: 'Activated' },
  { id: 'pcc-contractb0000000002', region: EMULATOR_REGION, tags: { team: 'red' }, name: 'contract-b', vpcId: 'vpc-contract3', acceptingVpcId: 'vpc-contract1', acceptingRegionId: EMULATOR_REGION, status: 'Activated' },
  { id: 'pcc-contractc0000000003', region: EMULATOR_REGION, tags: { scratch: 'yes' }, name: 'contract-c', vpcId: 'vpc-contract5', acceptingVpcId: 'vpc-contract6', acceptingRegionId: EMULATOR_REGION, status: 'Activated' },
];

let emulator: RunningEmulator | undefined;
let admin: EmulatorAdmin | undefined;
const EMULATOR_STS = { accessKeyId: 'STS.tagwarden-contract', accessKeySecret: 'sts-contract-secret', securityToken: 'CAIS-contract-token' };

const emulatorTarget: ContractTarget = {
  name: 'emulator',
  region: EMULATOR_REGION,
  endpoint: '',
  credentials: { accessKeyId: 'tagwarden-test', accessKeySecret: 'tagwarden-test-secret' },
  peerIds: EMULATOR_FIXTURE.slice(0, 2).map((r) => r.id),
  scratchId: EMULATOR_FIXTURE[2]!.id,
  pageSize: 20,
  minPages: 3,
  expectedIds: async () => (await admin!.getState({ region: EMULATOR_REGION })).resources.map((r) => r.id),
  metadataRegions: ['ap-south-1', 'ap-southeast-2'],
  otherRegion: 'cn-shanghai',
  stsCredentials: EMULATOR_STS,
  expectedLinkType: 'Gold',
  async start() {
    emulator = await startEmulator({
      generate: { count: 150, seed: 11, regions: [EMULATOR_REGION, 'cn-shanghai'] },
      credentials: [{ accessKeyId: 'tagwarden-test', accessKeySecret: 'tagwarden-test-secret' }, EMULATOR_STS],
    });
    admin = createEmulatorAdmin(emulator.url);
    await admin.upsertResources(EMULATOR_FIXTURE);
    this.endpoint = emulator.url;
  },
  async stop() {
    await emulator?.close();
    emulator = undefined;
  },
};

contractSuite(emulatorTarget);

describe('cloud contract: emulator-only failure classification', () => {
  let api: CloudApi;
  const [subject] = EMULATOR_FIXTURE;

  beforeAll(async () => {
    await emulatorTarget.start();
    api = clientFor(emulatorTarget);
  });
  afterEach(async () => {
    await admin?.setFaults({});
  });
  afterAll(async () => {
    await emulatorTarget.stop();
  });

  const untag = (clientToken = token()): Promise<unknown> =>
    api.untagResources({ region: EMULATOR_REGION, resourceIds: [subject!.id], tagKeys: ['team'], all: false, clientToken });

  const cases: [keyof FaultConfig, Partial<CloudFailure>][] = [
    ['serviceUnavailable', { kind: 'transient', code: 'ServiceUnavailable', httpStatus: 503 }],
    ['internalError', { kind: 'transient', code: 'InternalError', httpStatus: 500 }],
    ['reset', { kind: 'transient', code: 'NetworkError' }],
    ['html502', { kind: 'transient', code: 'BadResponse' }],
    ['throttle', { kind: 'throttled', code: 'Throttling.User', httpStatus: 400 }],
    // HTTP 200 with Success=false: transient, so the batch retries with the same token.
    ['unsuccessful', { kind: 'transient', code: 'UnsuccessfulResponse' }],
    ['noPermission', { kind: 'auth', code: 'Forbidden.NoPermission', httpStatus: 400 }],
    ['conflict', { kind: 'transient', code: 'Conflict.Operation', httpStatus: 400 }],
    ['invalidTagKey', { kind: 'permanent', code: 'InvalidTagKey', httpStatus: 400 }],
  ];
  it.each(cases)('%s is classified from the real response', async (fault, expected) => {
    await admin!.setFaults({ [fault]: 1, actions: ['UnTagResources'] });
    const failure = await failureOf(untag());
    expect(failure).toMatchObject(expected);
    await admin!.setFaults({});
    // Nothing was applied: the tag is still there.
    expect((await api.getPeerConnection(EMULATOR_REGION, subject!.id))?.tags['team']).toBe('blue');
  });

  it('Success=false applies nothing and remembers no token: the same token then succeeds', async () => {
    const t = token();
    const since = Math.max(0, ...(await admin!.getCalls()).calls.map((c) => c.seq));
    await admin!.setFaults({ unsuccessful: 1, actions: ['UnTagResources'] });
    expect(await failureOf(untag(t))).toMatchObject({ kind: 'transient', code: 'UnsuccessfulResponse' });
    expect((await api.getPeerConnection(EMULATOR_REGION, subject!.id))?.tags['team']).toBe('blue');
    await admin!.setFaults({});
    await untag(t);
    expect((await api.getPeerConnection(EMULATOR_REGION, subject!.id))?.tags['team']).toBeUndefined();
    await api.tagResources({ region: EMULATOR_REGION, resourceIds: [subject!.id], tags: { team: 'blue' }, clientToken: token() });
    // The faulted call is answered before its parameters are read, so the log names the fault, not the token.
    const calls = (await admin!.getCalls({ action: 'UnTagResources', since })).calls.filter((c) => c.fault === 'unsuccessful' || c.clientToken === t);
    expect(calls.map((c) => [c.status, c.applied, c.fault])).toEqual([[200, false, 'unsuccessful'], [200, true, null]]);
  });

  it.each([400, 429] as const)('throttling at HTTP %i carries x-acs-retry-after, read as milliseconds', async (throttleStatus) => {
    await admin!.setFaults({ throttle: 1, throttleStatus, retryAfterMs: 1234, actions: ['UnTagResources'] });
    expect(await failureOf(untag())).toMatchObject({ kind: 'throttled', code: 'Throttling.User', httpStatus: throttleStatus, retryAfterMs: 1234 });
  });

  it('GetVpcPeerConnectionAttribute is counted in the central quota bucket, whatever region asks', async () => {
    await admin!.setQuotas({ quotas: { GetVpcPeerConnectionAttribute: 360 } });
    await api.getPeerConnection(EMULATOR_REGION, subject!.id);
    await api.getPeerConnection('cn-shanghai', subject!.id);
    const { current } = await admin!.getQuotas();
    expect(current[`${CENTRAL_QUOTA_REGION}|GetVpcPeerConnectionAttribute`]).toBe(2);
    expect(Object.keys(current).filter((k) => k.endsWith('|GetVpcPeerConnectionAttribute'))).toEqual([`${CENTRAL_QUOTA_REGION}|GetVpcPeerConnectionAttribute`]);
  });

  describe('connections in status Deleting and Deleted (the service\'s answer is unconfirmed: every plausible one)', () => {
    const leaving: EmulatorResource[] = [
      { id: 'pcc-contractdeleted000004', region: EMULATOR_REGION, status: 'Deleted', tags: { tmp: 'd' } },
      { id: 'pcc-contractdeleting00005', region: EMULATOR_REGION, status: 'Deleting', tags: { tmp: 'e' } },
    ];
    beforeAll(async () => {
      await admin!.upsertResources(leaving);
    });
    afterAll(async () => {
      await admin!.setBehaviour({ deleted: {} });
      await admin!.deleteResources(leaving.map((r) => r.id));
    });

    it.each([
      [{ get: 'found', list: 'listed', tags: 'ok' }, 'found', true, null],
      [{ get: 'found', list: 'listed', tags: 'not-found' }, 'found', true, { kind: 'not-found', code: 'InvalidInstanceIds.NotFound' }],
      [{ get: 'found', list: 'hidden', tags: 'incorrect-status' }, 'found', false, { kind: 'transient', code: 'IncorrectStatus.VpcPeer' }],
      [{ get: 'not-found', list: 'hidden', tags: 'not-found' }, 'null', false, { kind: 'not-found', code: 'InvalidInstanceIds.NotFound' }],
    ] as const)('%j: Get %s, listed %s, UnTag %j', async (deleted, get, listed, untagFailure) => {
      await admin!.setBehaviour({ deleted });
      for (const r of leaving) {
        const got = await api.getPeerConnection(EMULATOR_REGION, r.id);
        if (get === 'found') expect(got?.attributes.status).toBe(r.status);
        else expect(got).toBeNull();
        const ids = (await collect(api.listPeerConnections(EMULATOR_REGION, { tags: [{ key: 'tmp' }] }))).map((x) => x.id);
        expect(ids.includes(r.id)).toBe(listed);
        const call = api.untagResources({ region: EMULATOR_REGION, resourceIds: [r.id], tagKeys: ['nothing-here'], all: false, clientToken: token() });
        if (untagFailure === null) await call;
        else expect(await failureOf(call)).toMatchObject(untagFailure);
      }
    });
  });

  it('a call applied then dropped is transient, and its ClientToken replay succeeds without a second change', async () => {
    await api.tagResources({ region: EMULATOR_REGION, resourceIds: [subject!.id], tags: { [KEY_A]: 'drop' }, clientToken: token() });
    const t = token();
    await admin!.setFaults({ applyThenDrop: 1, actions: ['UnTagResources'] });
    const req = { region: EMULATOR_REGION, resourceIds: [subject!.id], tagKeys: [KEY_A], all: false, clientToken: t };
    expect(await failureOf(api.untagResources(req))).toMatchObject({ kind: 'transient', code: 'NetworkError' });
    await admin!.setFaults({});
    await api.untagResources(req);
    const calls = (await admin!.getCalls({ action: 'UnTagResources' })).calls.filter((c) => c.clientToken === t);
    expect(calls.map((c) => [c.applied, c.replayed])).toEqual([[true, false], [false, true]]);
    expect((await api.getPeerConnection(EMULATOR_REGION, subject!.id))?.tags[KEY_A]).toBeUndefined();
  });

  it('exceeding the real quota is throttled', async () => {
    await admin!.setQuotas({ quotas: { GetVpcPeerConnectionAttribute: 2 }, windowMs: 60_000 });
    try {
      const outcomes: string[] = [];
      for (let i = 0; i < 4; i++) {
        try {
          await api.getPeerConnection(EMULATOR_REGION, subject!.id);
          outcomes.push('OK');
        } catch (err) {
          outcomes.push((err as CloudError).failure.kind);
        }
      }
      expect(outcomes.filter((o) => o === 'OK').length).toBeLessThanOrEqual(2);
      expect(outcomes).toContain('throttled');
    } finally {
      await admin!.setQuotas({ quotas: { GetVpcPeerConnectionAttribute: 360 } });
    }
  });

  it('records the signature version the SDK used', async () => {
    await admin!.clearCalls();
    await clientFor(emulatorTarget, { signatureVersion: 'v2' }).getPeerConnection(EMULATOR_REGION, subject!.id);
    await clientFor(emulatorTarget, { signatureVersion: 'v3' }).getPeerConnection(EMULATOR_REGION, subject!.id);
    const calls = (await admin!.getCalls({ action: 'GetVpcPeerConnectionAttribute' })).calls;
    expect(calls.map((c) => [c.signature, c.code])).toEqual([['v2', 'OK'], ['v3', 'OK']]);
  });
});

// ---------------------------------------------------------------------------------------------
// The live target: registered only when explicitly asked for with real credentials.

const liveEnv = process.env;
const livePeerIds = (liveEnv['TAGWARDEN_CONTRACT_PEER_IDS'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
if (
  liveEnv['TAGWARDEN_CONTRACT_LIVE'] === '1' &&
  liveEnv['ALIBABA_CLOUD_ACCESS_KEY_ID'] &&
  liveEnv['ALIBABA_CLOUD_ACCESS_KEY_SECRET'] &&
  liveEnv['TAGWARDEN_CONTRACT_REGION'] &&
  livePeerIds.length >= 2
) {
  const scratch = liveEnv['TAGWARDEN_CONTRACT_SCRATCH_ID'];
  const securityToken = liveEnv['ALIBABA_CLOUD_SECURITY_TOKEN'];
  contractSuite({
    name: 'live VpcPeer API',
    region: liveEnv['TAGWARDEN_CONTRACT_REGION'],
    endpoint: liveEnv['TAGWARDEN_CONTRACT_ENDPOINT'] ?? 'https://vpcpeer.aliyuncs.com',
    credentials: {
      accessKeyId: liveEnv['ALIBABA_CLOUD_ACCESS_KEY_ID'],
      accessKeySecret: liveEnv['ALIBABA_CLOUD_ACCESS_KEY_SECRET'],
      ...(securityToken ? { securityToken } : {}),
    },
    peerIds: livePeerIds,
    ...(scratch ? { scratchId: scratch } : {}),
    pageSize: 1,
    minPages: 2,
    // ap-southeast-2 is in the metadata too, but the English endpoint page marks it closed: not asserted live.
    metadataRegions: ['ap-south-1'],
    otherRegion: liveEnv['TAGWARDEN_CONTRACT_REGION'] === 'cn-hangzhou' ? 'cn-shanghai' : 'cn-hangzhou',
    ...(securityToken
      ? { stsCredentials: { accessKeyId: liveEnv['ALIBABA_CLOUD_ACCESS_KEY_ID'], accessKeySecret: liveEnv['ALIBABA_CLOUD_ACCESS_KEY_SECRET'], securityToken } }
      : {}),
    start: async () => undefined,
    stop: async () => undefined,
  });
}
