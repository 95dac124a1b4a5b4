// The five VpcPeer actions: parameter validation (prepare) and their effect on the estate (run).
// Must not know about HTTP, signatures, quotas or faults; validation throws ApiFailure before any change.
import type { ApiName } from '../model.js';
import { ApiFailure, invalid, missing } from './api-errors.js';
import {
  checkTagKey, checkTagValue, optional, readBool, readClientToken, readInt, readList, readPairs, required,
  type Params,
} from './params.js';
import { mix32 } from './prng.js';
import type { ResolvedBehaviour } from './core.js';
import { type Conn, type EstateStore, GONE_STATUSES, type RegionList, customTagCount, isSystemKey, isoSeconds, tagIndex } from './store.js';

/** The only ResourceType of this API. */
export const RESOURCE_TYPE = 'PeerConnection';
/** Most resource IDs and tag keys per call (reference §1.2-1.4). */
export const MAX_IDS = 20;
export const MAX_TAGS = 20;
/** The most tags one resource may carry (system tags not counted). */
export const MAX_TAGS_PER_RESOURCE = 20;

/** What the actions need from the emulator. */
export interface ActionEnv {
  readonly store: EstateStore;
  /** How connections on their way out are answered, and the disputed limits. */
  readonly behaviour: ResolvedBehaviour;
  /** Whether RegionId names a region of this emulator. */
  knownRegion(region: string): boolean;
}

/** The JSON body of a successful call (without RequestId) and what it changed. */
export interface ActionOutput {
  body: Record<string, unknown>;
  removed: number;
  added: number;
}

/** A validated call, ready to run. */
export interface PreparedCall {
  /** Normalised parameters: logged, and compared for ClientToken reuse. */
  normalized: Record<string, unknown>;
  /** Set only for actions that honour ClientToken. */
  clientToken: string | undefined;
  run(): ActionOutput;
}

function regionParam(params: Params, env: ActionEnv, isRequired: boolean): string | undefined {
  const region = isRequired ? required(params, 'RegionId') : optional(params, 'RegionId');
  if (region !== undefined && !env.knownRegion(region)) {
    throw new ApiFailure('InvalidRegionId', `The specified RegionId "${region}" does not exist.`);
  }
  return region;
}

function resourceType(params: Params): void {
  const type = required(params, 'ResourceType');
  if (type !== RESOURCE_TYPE) {
    throw new ApiFailure('InvalidInstanceType.NotFound', `The ResourceType "${type}" is not found; it must be ${RESOURCE_TYPE}.`);
  }
}

function resourceIds(params: Params, isRequired: boolean): string[] {
  const ids = readList(params, 'ResourceId');
  if (ids.length === 0 && isRequired) throw missing('ResourceId.1');
  if (ids.length > MAX_IDS) throw new ApiFailure('NumberExceed.ResourceIds', `At most ${MAX_IDS} resource IDs may be given.`);
  ids.forEach((id, i) => {
    if (id === '') throw missing(`ResourceId.${i + 1}`);
  });
  return [...new Set(ids)];
}

/** Whether a connection is Deleting or Deleted. */
function gone(c: Conn): boolean {
  return GONE_STATUSES.has(c.attrs.status);
}

/** Whether the tag APIs see the connection at all (a Deleting/Deleted one may be invisible to them). */
function taggable(env: ActionEnv, c: Conn): boolean {
  return env.behaviour.deleted.tags !== 'not-found' || !gone(c);
}

/**
 * Resolves every id in the region for a tag API, or fails the whole call naming the unknown ones (then,
 * with `incorrect-status`, the Deleting/Deleted ones).
 */
function resolve(env: ActionEnv, region: string, ids: readonly string[]): Conn[] {
  const found: Conn[] = [];
  const unknown: string[] = [];
  const leaving: string[] = [];
  for (const id of ids) {
    const c = env.store.getIn(region, id);
    if (c === undefined || !taggable(env, c)) unknown.push(id);
    else {
      if (env.behaviour.deleted.tags === 'incorrect-status' && gone(c)) leaving.push(id);
      found.push(c);
    }
  }
  if (unknown.length > 0) {
    throw new ApiFailure('InvalidInstanceIds.NotFound', `The instance IDs were not found in ${region}: ${unknown.join(', ')}.`);
  }
  if (leaving.length > 0) {
    throw new ApiFailure('IncorrectStatus.VpcPeer', `The status of the VPC peering connections ${leaving.join(', ')} is incorrect (Deleting or Deleted).`);
  }
  return found;
}

interface TagFilter {
  key: string;
  value: string | undefined;
}

/**
 * Tag pairs of a filter (`Tag.N` / `Tags.N`): key required once given, value optional (any value). With
 * `invalidKey`, a key that breaks the length or URL rule is answered with that code (ListTagResources
 * documents `InvalidTagKey`, not `IllegalParam.TagKey`).
 */
function tagFilters(params: Params, name: string, max: number = MAX_TAGS, invalidKey?: 'InvalidTagKey'): TagFilter[] {
  const pairs = readPairs(params, name);
  if (pairs.length > max) throw new ApiFailure('NumberExceed.Tags', `At most ${max} tags may be given.`);
  const seen = new Set<string>();
  return pairs.map((p) => {
    if (p.key === undefined) throw missing(`${name}.${p.index}.Key`);
    try {
      checkTagKey(p.key, false);
    } catch (err) {
      if (invalidKey !== undefined && err instanceof ApiFailure && err.code === 'IllegalParam.TagKey') {
        throw new ApiFailure(invalidKey, `The tag key is not valid: ${err.message}`);
      }
      throw err;
    }
    if (p.value !== undefined) checkTagValue(p.value);
    if (seen.has(p.key)) throw new ApiFailure('Forbidden.TagKey.Duplicated', `The tag key "${p.key}" is given twice.`);
    seen.add(p.key);
    return { key: p.key, value: p.value };
  });
}

function matchesTags(c: Conn, filters: readonly TagFilter[]): boolean {
  for (const f of filters) {
    const i = tagIndex(c.tags, f.key);
    if (i < 0) return false;
    if (f.value !== undefined && c.tags[i + 1] !== f.value) return false;
  }
  return true;
}

// ---- NextToken: opaque base64url, bound to the estate epoch so a replaced estate refuses old tokens.

function encodeToken(fields: ReadonlyArray<string | number>): string {
  return Buffer.from(fields.join('|'), 'utf8').toString('base64url');
}

function decodeToken(token: string, kind: string, epoch: number, arity: number): string[] {
  const fields = Buffer.from(token, 'base64url').toString('utf8').split('|');
  if (fields.length !== arity || fields[0] !== kind) throw invalid('NextToken', 'it was not issued for this request');
  if (fields[1] !== String(epoch)) throw invalid('NextToken', 'it has expired');
  return fields.slice(2);
}

function tokenInt(text: string | undefined): number {
  if (text === undefined || !/^\d{1,10}$/.test(text)) throw invalid('NextToken', 'it is malformed');
  return Number(text);
}

// ---- views

function cidrFor(vpcId: string): string[] {
  if (vpcId === '') return [];
  let h = 0;
  for (let i = 0; i < vpcId.length; i++) h = mix32(h, vpcId.charCodeAt(i));
  return [`10.${h & 255}.0.0/16`];
}

/** A connection as ListVpcPeerConnections and GetVpcPeerConnectionAttribute return it. */
export function connView(c: Conn): Record<string, unknown> {
  const tags: Array<{ Key: string; Value: string }> = [];
  for (let i = 0; i < c.tags.length; i += 2) tags.push({ Key: c.tags[i] ?? '', Value: c.tags[i + 1] ?? '' });
  const a = c.attrs;
  return {
    InstanceId: c.id,
    Name: a.name,
    Description: a.description,
    GmtCreate: isoSeconds(a.gmtCreate),
    GmtModified: isoSeconds(a.gmtModified),
    GmtExpired: a.gmtExpired < 0 ? null : isoSeconds(a.gmtExpired),
    OwnerId: a.ownerId,
    AcceptingOwnerUid: a.acceptingOwnerUid,
    RegionId: c.region,
    AcceptingRegionId: a.acceptingRegionId,
    Bandwidth: a.bandwidth,
    Status: a.status,
    BizStatus: a.bizStatus,
    ResourceGroupId: a.resourceGroupId,
    Vpc: { VpcId: a.vpcId, Ipv4Cidrs: cidrFor(a.vpcId), Ipv6Cidrs: [] },
    AcceptingVpc: { VpcId: a.acceptingVpcId, Ipv4Cidrs: cidrFor(a.acceptingVpcId), Ipv6Cidrs: [] },
    Tags: tags,
    LinkType: a.linkType,
    ManagedService: a.managedService,
  };
}

// ---- UnTagResources

function prepareUntag(params: Params, env: ActionEnv): PreparedCall {
  const region = regionParam(params, env, true) ?? '';
  resourceType(params);
  const ids = resourceIds(params, true);
  const keys = readList(params, 'TagKey');
  if (keys.length > MAX_TAGS) throw new ApiFailure('NumberExceed.Tags', `At most ${MAX_TAGS} tag keys may be given.`);
  for (const k of keys) checkTagKey(k, true);
  const all = readBool(params, 'All', false);
  const realKeys = [...new Set(keys.filter((k) => k !== ''))].sort();
  // An empty key matches nothing; a call with neither keys nor All=true has nothing to do and is refused.
  if (keys.length === 0 && !all) throw missing('TagKey.1');
  const clientToken = readClientToken(params);
  return {
    normalized: { RegionId: region, ResourceType: RESOURCE_TYPE, ResourceId: [...ids].sort(), TagKey: realKeys, All: all },
    clientToken,
    run(): ActionOutput {
      const conns = resolve(env, region, ids);
      let removed = 0;
      for (const c of conns) {
        const before = c.tags.length;
        // All=true removes every tag except system tags (acs:*), which only the platform manages.
        c.tags = all ? systemTagsOnly(c.tags) : removeKeys(c.tags, realKeys);
        removed += (before - c.tags.length) / 2;
      }
      return { body: { Success: true }, removed, added: 0 };
    },
  };
}

function systemTagsOnly(tags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < tags.length; i += 2) {
    const key = tags[i] ?? '';
    if (isSystemKey(key)) out.push(key, tags[i + 1] ?? '');
  }
  return out;
}

function removeKeys(tags: string[], keys: readonly string[]): string[] {
  if (keys.length === 0) return tags;
  let out: string[] | undefined;
  for (const key of keys) {
    const i = tagIndex(out ?? tags, key);
    if (i < 0) continue;
    out ??= tags.slice();
    out.splice(i, 2);
  }
  return out ?? tags;
}

// ---- TagResources

function prepareTag(params: Params, env: ActionEnv): PreparedCall {
  const region = regionParam(params, env, true) ?? '';
  resourceType(params);
  const ids = resourceIds(params, true);
  const pairs = readPairs(params, 'Tag');
  if (pairs.length === 0) throw missing('Tag.1.Key');
  if (pairs.length > MAX_TAGS) throw new ApiFailure('NumberExceed.Tags', `At most ${MAX_TAGS} tags may be given.`);
  const tags = new Map<string, string>();
  for (const p of pairs) {
    if (p.key === undefined) throw missing(`Tag.${p.index}.Key`);
    checkTagKey(p.key, false);
    // The SDK model says a value must be given for every key; it may be the empty string.
    if (p.value === undefined) throw missing(`Tag.${p.index}.Value`);
    const value = p.value;
    checkTagValue(value);
    if (tags.has(p.key)) throw new ApiFailure('Forbidden.TagKey.Duplicated', `The tag key "${p.key}" is given twice.`);
    tags.set(p.key, value);
  }
  const clientToken = readClientToken(params);
  const sorted = [...tags.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return {
    normalized: {
      RegionId: region,
      ResourceType: RESOURCE_TYPE,
      ResourceId: [...ids].sort(),
      Tag: sorted.map(([Key, Value]) => ({ Key, Value })),
    },
    clientToken,
    run(): ActionOutput {
      const conns = resolve(env, region, ids);
      for (const c of conns) {
        let after = customTagCount(c.tags);
        for (const key of tags.keys()) if (tagIndex(c.tags, key) < 0) after++;
        if (after > MAX_TAGS_PER_RESOURCE) {
          throw new ApiFailure('NumberExceed.Tags', `Resource ${c.id} would carry more than ${MAX_TAGS_PER_RESOURCE} tags.`);
        }
      }
      let added = 0;
      for (const c of conns) {
        let next: string[] | undefined;
        for (const [key, value] of tags) {
          const cur = next ?? c.tags;
          const i = tagIndex(cur, key);
          if (i >= 0 && cur[i + 1] === value) continue;
          next ??= c.tags.slice();
          if (i >= 0) next[i + 1] = value;
          else next.push(key, value);
          added++;
        }
        if (next !== undefined) c.tags = next;
      }
      return { body: { Success: true }, removed: 0, added };
    },
  };
}

// ---- ListTagResources

interface TagRow {
  ResourceId: string;
  ResourceType: string;
  RegionNo: string;
  TagKey: string;
  TagValue: string;
}

/** ListTagResources `Category` (SDK 2.0.x): All (default), Custom, System. */
export const TAG_CATEGORIES = ['All', 'Custom', 'System'] as const;
type TagCategory = (typeof TAG_CATEGORIES)[number];

function rowsOf(c: Conn, filters: readonly TagFilter[], category: TagCategory = 'All'): TagRow[] {
  const rows: TagRow[] = [];
  const push = (i: number): void => {
    const key = c.tags[i] ?? '';
    if (category !== 'All' && isSystemKey(key) !== (category === 'System')) return;
    rows.push({ ResourceId: c.id, ResourceType: RESOURCE_TYPE, RegionNo: c.region, TagKey: key, TagValue: c.tags[i + 1] ?? '' });
  };
  // With tag filters only the filtered keys are listed; with IDs alone every tag is.
  if (filters.length > 0) for (const f of filters) push(tagIndex(c.tags, f.key));
  else for (let i = 0; i < c.tags.length; i += 2) push(i);
  return rows;
}

function prepareListTags(params: Params, env: ActionEnv): PreparedCall {
  const region = regionParam(params, env, true) ?? '';
  resourceType(params);
  const ids = resourceIds(params, false);
  const filters = tagFilters(params, 'Tag', MAX_TAGS, 'InvalidTagKey');
  const categoryParam = optional(params, 'Category') ?? 'All';
  if (!(TAG_CATEGORIES as readonly string[]).includes(categoryParam)) throw invalid('Category', `must be one of ${TAG_CATEGORIES.join(', ')}`);
  const category = categoryParam as TagCategory;
  if (ids.length === 0 && filters.length === 0) {
    throw new ApiFailure('BothEmpty.TagsAndResources', 'ResourceId.N and Tag.N must not both be empty.');
  }
  const maxResults = readInt(params, 'MaxResults', 1, 50, 50);
  const nextToken = optional(params, 'NextToken');
  const { store } = env;
  return {
    normalized: {
      RegionId: region, ResourceType: RESOURCE_TYPE, ResourceId: ids, Tag: filters, Category: category, MaxResults: maxResults,
      NextToken: nextToken ?? null,
    },
    clientToken: undefined,
    run(): ActionOutput {
      const page: TagRow[] = [];
      let next = '';
      if (ids.length > 0) {
        const rows = resolve(env, region, ids).filter((c) => matchesTags(c, filters)).flatMap((c) => rowsOf(c, filters, category));
        const offset = nextToken === undefined ? 0 : tokenInt(decodeToken(nextToken, 'TI', store.epoch, 3)[0]);
        if (offset > rows.length) throw invalid('NextToken', 'it is out of range');
        page.push(...rows.slice(offset, offset + maxResults));
        if (offset + maxResults < rows.length) next = encodeToken(['TI', store.epoch, offset + maxResults]);
      } else {
        const list = store.region(region);
        let pos = 0;
        let sub = 0;
        if (nextToken !== undefined) {
          const [p, s] = decodeToken(nextToken, 'TT', store.epoch, 4);
          pos = tokenInt(p);
          sub = tokenInt(s);
        }
        // Scans from the cursor; stops at the first row past the page, whose position becomes the token.
        const items = list?.items ?? [];
        scan: for (; pos < items.length; pos++, sub = 0) {
          const c = items[pos];
          if (c === undefined || !c.live || !taggable(env, c) || !matchesTags(c, filters)) continue;
          const rows = rowsOf(c, filters, category);
          for (; sub < rows.length; sub++) {
            if (page.length === maxResults) {
              next = encodeToken(['TT', store.epoch, pos, sub]);
              break scan;
            }
            const row = rows[sub];
            if (row !== undefined) page.push(row);
          }
        }
      }
      return { body: { NextToken: next, MaxResults: maxResults, TagResources: page }, removed: 0, added: 0 };
    },
  };
}

// ---- ListVpcPeerConnections

function prepareListConns(params: Params, env: ActionEnv): PreparedCall {
  const region = regionParam(params, env, false);
  const instanceId = optional(params, 'InstanceId');
  const vpcParam = optional(params, 'VpcId');
  const vpcIds = vpcParam === undefined ? [] : vpcParam.split(',').map((v) => v.trim()).filter((v) => v !== '');
  if (vpcIds.length > 2) throw invalid('VpcId', 'at most 2 VPC IDs may be given');
  const name = optional(params, 'Name');
  const groupId = optional(params, 'ResourceGroupId');
  const filters = tagFilters(params, 'Tags', env.behaviour.limits.listConnectionsTags);
  const maxResults = readInt(params, 'MaxResults', 1, 100, 20);
  const hideGone = env.behaviour.deleted.list === 'hidden';
  const nextToken = optional(params, 'NextToken');
  const { store } = env;
  const filtered = vpcIds.length > 0 || name !== undefined || groupId !== undefined || filters.length > 0 || hideGone;
  const [a, b] = vpcIds;
  const attrFiltered = a !== undefined || name !== undefined || groupId !== undefined;
  const matches = (c: Conn): boolean => {
    if (filters.length > 0 && !matchesTags(c, filters)) return false;
    if (hideGone && gone(c)) return false;
    if (!attrFiltered) return true;
    const at = c.attrs; // derived on demand for generated estates: only read when an attribute filter needs it
    if (a !== undefined) {
      if (b === undefined) {
        if (at.vpcId !== a && at.acceptingVpcId !== a) return false;
      } else if (!((at.vpcId === a && at.acceptingVpcId === b) || (at.vpcId === b && at.acceptingVpcId === a))) {
        return false;
      }
    }
    if (name !== undefined && at.name !== name) return false;
    return groupId === undefined || at.resourceGroupId === groupId;
  };
  return {
    normalized: {
      RegionId: region ?? null, InstanceId: instanceId ?? null, VpcId: vpcIds, Name: name ?? null,
      ResourceGroupId: groupId ?? null, Tags: filters, MaxResults: maxResults, NextToken: nextToken ?? null,
    },
    clientToken: undefined,
    run(): ActionOutput {
      if (instanceId !== undefined) {
        const c = region === undefined ? store.get(instanceId) : store.getIn(region, instanceId);
        const items = c !== undefined && matches(c) ? [connView(c)] : [];
        return { body: { TotalCount: items.length, MaxResults: maxResults, NextToken: '', VpcPeerConnects: items }, removed: 0, added: 0 };
      }
      const lists: RegionList[] = [];
      for (const r of region === undefined ? store.regionNames() : [region]) {
        const list = store.region(r);
        if (list !== undefined) lists.push(list);
      }
      let li = 0;
      let pos = 0;
      let total: number;
      if (nextToken !== undefined) {
        const [r, p, t] = decodeToken(nextToken, 'LV', store.epoch, 5);
        li = lists.findIndex((l) => l.name === r);
        if (li < 0) throw invalid('NextToken', 'it was not issued for this request');
        pos = tokenInt(p);
        total = filtered ? tokenInt(t) : lists.reduce((n, l) => n + l.live, 0);
      } else if (filtered) {
        // Counted once on the first page and carried in the token: later pages stay O(page).
        total = 0;
        for (const l of lists) for (const c of l.items) if (c.live && matches(c)) total++;
      } else {
        total = lists.reduce((n, l) => n + l.live, 0);
      }
      const page: Record<string, unknown>[] = [];
      const repeat = env.behaviour.paging.repeat;
      let lastPos = -1;
      let next = '';
      scan: for (; li < lists.length; li++, pos = 0) {
        const list = lists[li];
        if (list === undefined) continue;
        for (; pos < list.items.length; pos++) {
          const c = list.items[pos];
          if (c === undefined || !c.live || !matches(c)) continue;
          if (page.length === maxResults) {
            // across-pages: the next page starts one row back, with this page's last row (when that still advances).
            const resume = repeat === 'across-pages' && page.length > 1 && lastPos >= 0 ? lastPos : pos;
            next = encodeToken(['LV', store.epoch, list.name, resume, total]);
            break scan;
          }
          page.push(connView(c));
          lastPos = pos;
        }
        lastPos = -1;
      }
      if (repeat === 'in-page' && page[0] !== undefined) page.push(page[0]);
      return { body: { TotalCount: total, MaxResults: maxResults, NextToken: next, VpcPeerConnects: page }, removed: 0, added: 0 };
    },
  };
}

// ---- GetVpcPeerConnectionAttribute

function prepareGet(params: Params, env: ActionEnv): PreparedCall {
  const instanceId = required(params, 'InstanceId');
  // The API takes no RegionId and is served centrally: it answers for a connection of any region, and a
  // RegionId sent anyway is not one of its parameters (ignored, as the gateway ignores unknown parameters).
  return {
    normalized: { InstanceId: instanceId },
    clientToken: undefined,
    run(): ActionOutput {
      const c = env.store.get(instanceId);
      if (c === undefined || (gone(c) && env.behaviour.deleted.get === 'not-found')) {
        throw new ApiFailure('ResourceNotFound.InstanceId', `The specified instance "${instanceId}" does not exist.`);
      }
      return { body: connView(c), removed: 0, added: 0 };
    },
  };
}

const PREPARERS: Record<ApiName, (params: Params, env: ActionEnv) => PreparedCall> = {
  UnTagResources: prepareUntag,
  TagResources: prepareTag,
  ListTagResources: prepareListTags,
  ListVpcPeerConnections: prepareListConns,
  GetVpcPeerConnectionAttribute: prepareGet,
};

/** Validates the parameters of `action`; throws ApiFailure on the first problem. */
export function prepareAction(action: ApiName, params: Params, env: ActionEnv): PreparedCall {
  return PREPARERS[action](params, env);
}
