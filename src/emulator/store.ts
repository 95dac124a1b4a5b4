// The in-memory estate: compact connection records, an id index and append-only per-region arrays.
// Must not know about HTTP, signatures or quotas; positions in a region array never move (tombstones).
import { LEAVING_STATUSES } from '../model.js';
import type { EmulatorResource } from './types.js';

/** Everything about a connection except its id, region and tags. Times are epoch seconds. */
export interface ConnAttrs {
  readonly name: string;
  readonly description: string;
  readonly status: string;
  readonly bizStatus: string;
  readonly vpcId: string;
  readonly acceptingVpcId: string;
  readonly acceptingRegionId: string;
  readonly acceptingOwnerUid: number;
  readonly resourceGroupId: string;
  readonly ownerId: number;
  readonly bandwidth: number;
  readonly gmtCreate: number;
  readonly gmtModified: number;
  /** -1 when unset. */
  readonly gmtExpired: number;
  readonly linkType: string;
  readonly managedService: string;
}

/** The statuses of a connection on its way out (reference: Status values of ListVpcPeerConnections). */
export const GONE_STATUSES: ReadonlySet<string> = LEAVING_STATUSES;

/** Derives the attributes of generated connection number `index` (shared by a whole generated estate). */
export interface AttrSource {
  attrsOf(index: number): ConnAttrs;
}

/**
 * One peering connection, compact: tags are a flat `[k0, v0, k1, v1, ...]` array; the other attributes
 * are either stored (fixtures) or derived on demand from a shared generator (generated estates), so a
 * generated connection costs three heap objects: this record, its id and its tag array.
 */
export class Conn {
  /** Index in its region's array; stable until the estate is replaced. */
  pos = -1;
  live = true;

  constructor(
    readonly id: string,
    readonly region: string,
    public tags: string[],
    private readonly source: ConnAttrs | AttrSource,
    private readonly index: number,
  ) {}

  get attrs(): ConnAttrs {
    const s = this.source;
    return 'attrsOf' in s ? s.attrsOf(this.index) : s;
  }
}

/** The connections of one region, in insertion order; removed ones stay as tombstones. */
export class RegionList {
  readonly items: Conn[] = [];
  live = 0;

  constructor(readonly name: string) {}
}

/** Index of `key` in a flat tag array, or -1. */
export function tagIndex(tags: readonly string[], key: string): number {
  for (let i = 0; i < tags.length; i += 2) if (tags[i] === key) return i;
  return -1;
}

/** Whether a key is a system tag (`acs:` prefix): the API never attaches or removes those. */
export function isSystemKey(key: string): boolean {
  return key.startsWith('acs:');
}

/** Number of non-system tags. */
export function customTagCount(tags: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < tags.length; i += 2) if (!isSystemKey(tags[i] ?? '')) n++;
  return n;
}

/** Formats epoch seconds as `yyyy-MM-ddTHH:mm:ssZ`. */
export function isoSeconds(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Parses an ISO date to epoch seconds; undefined when not a date. */
export function parseIsoSeconds(text: string): number | undefined {
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/** The whole estate. Every lookup by id is O(1); region arrays only grow until `clear()`. */
export class EstateStore {
  /** Changes whenever the estate is replaced; paging tokens from an older epoch are refused. */
  epoch = 1;
  private readonly byId = new Map<string, Conn>();
  private readonly regions = new Map<string, RegionList>();

  get size(): number {
    return this.byId.size;
  }

  clear(): void {
    this.byId.clear();
    this.regions.clear();
    this.epoch++;
  }

  get(id: string): Conn | undefined {
    return this.byId.get(id);
  }

  /** The connection with that id in that region, else undefined (regions are kept apart). */
  getIn(region: string, id: string): Conn | undefined {
    const c = this.byId.get(id);
    return c !== undefined && c.region === region ? c : undefined;
  }

  region(name: string): RegionList | undefined {
    return this.regions.get(name);
  }

  /** Region names holding (or having held) connections, sorted. */
  regionNames(): string[] {
    return [...this.regions.keys()].sort();
  }

  /** Adds a connection; an existing one with the same id is replaced (in place when the region is the same). */
  put(conn: Conn): void {
    const old = this.byId.get(conn.id);
    let list = this.regions.get(conn.region);
    if (list === undefined) {
      list = new RegionList(conn.region);
      this.regions.set(conn.region, list);
    }
    if (old !== undefined) {
      if (old.region === conn.region) {
        conn.pos = old.pos;
        list.items[old.pos] = conn;
        this.byId.set(conn.id, conn);
        return;
      }
      this.remove(old.id);
    }
    conn.pos = list.items.length;
    list.items.push(conn);
    list.live++;
    this.byId.set(conn.id, conn);
  }

  /** Removes a connection (leaves a tombstone in its region array). */
  remove(id: string): boolean {
    const c = this.byId.get(id);
    if (c === undefined) return false;
    c.live = false;
    this.byId.delete(id);
    const list = this.regions.get(c.region);
    if (list !== undefined) list.live--;
    return true;
  }

  /** Every live connection, region by region (sorted), in insertion order. */
  *all(): Generator<Conn> {
    for (const name of this.regionNames()) {
      const list = this.regions.get(name);
      if (list === undefined) continue;
      for (const c of list.items) if (c.live) yield c;
    }
  }
}

/** The admin-API view of a connection. */
export function toDoc(c: Conn): Required<EmulatorResource> {
  const tags: Record<string, string> = {};
  for (let i = 0; i < c.tags.length; i += 2) tags[c.tags[i] ?? ''] = c.tags[i + 1] ?? '';
  const a = c.attrs;
  return {
    id: c.id,
    region: c.region,
    tags,
    name: a.name,
    description: a.description,
    status: a.status,
    bizStatus: a.bizStatus,
    vpcId: a.vpcId,
    acceptingVpcId: a.acceptingVpcId,
    acceptingRegionId: a.acceptingRegionId,
    acceptingOwnerUid: a.acceptingOwnerUid,
    resourceGroupId: a.resourceGroupId,
    ownerId: a.ownerId,
    bandwidth: a.bandwidth,
    gmtCreate: isoSeconds(a.gmtCreate),
    gmtModified: isoSeconds(a.gmtModified),
    gmtExpired: a.gmtExpired < 0 ? null : isoSeconds(a.gmtExpired),
    linkType: a.linkType,
    managedService: a.managedService,
  };
}

/** Defaults for fields a fixture leaves out. */
const DEFAULT_OWNER_ID = 1234567890123456;
const DEFAULT_CREATED = 1672531200; // 2023-01-01T00:00:00Z
/** The LinkType of connections that do not say (the SDK's example value). */
export const DEFAULT_LINK_TYPE = 'Gold';

function str(doc: Record<string, unknown>, field: string, fallback: string, where: string): string {
  const v = doc[field];
  if (v === undefined) return fallback;
  if (typeof v !== 'string') throw new Error(`${where}: "${field}" must be a string`);
  return v;
}

function num(doc: Record<string, unknown>, field: string, fallback: number, where: string): number {
  const v = doc[field];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where}: "${field}" must be a number`);
  return v;
}

function time(doc: Record<string, unknown>, field: string, fallback: number, where: string): number {
  const v = doc[field];
  if (v === undefined || v === null) return fallback;
  const s = typeof v === 'string' ? parseIsoSeconds(v) : undefined;
  if (s === undefined) throw new Error(`${where}: "${field}" must be an ISO-8601 date`);
  return s;
}

/**
 * Builds a connection from its admin-API shape, filling realistic defaults. Throws an Error naming the
 * bad field. Fixtures may carry system tags (`acs:*`) and are not held to the 20-tag limit.
 */
export function fromDoc(input: unknown, index: number): Conn {
  const where = `resources[${index}]`;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new Error(`${where}: must be an object`);
  const doc = input as Record<string, unknown>;
  const id = str(doc, 'id', '', where);
  const region = str(doc, 'region', '', where);
  if (id === '') throw new Error(`${where}: "id" is required`);
  if (region === '') throw new Error(`${where}: "region" is required`);
  const tagsIn = doc['tags'] ?? {};
  if (typeof tagsIn !== 'object' || tagsIn === null || Array.isArray(tagsIn)) throw new Error(`${where}: "tags" must be an object`);
  const tags: string[] = [];
  for (const [k, v] of Object.entries(tagsIn as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new Error(`${where}: tag "${k}" must have a string value`);
    tags.push(k, v);
  }
  const status = str(doc, 'status', 'Activated', where);
  const acceptingRegionId = str(doc, 'acceptingRegionId', region, where);
  const ownerId = num(doc, 'ownerId', DEFAULT_OWNER_ID, where);
  const gmtCreate = time(doc, 'gmtCreate', DEFAULT_CREATED, where);
  const attrs: ConnAttrs = {
    name: str(doc, 'name', '', where),
    description: str(doc, 'description', '', where),
    status,
    bizStatus: str(doc, 'bizStatus', 'Normal', where),
    vpcId: str(doc, 'vpcId', '', where),
    acceptingVpcId: str(doc, 'acceptingVpcId', '', where),
    acceptingRegionId,
    acceptingOwnerUid: num(doc, 'acceptingOwnerUid', ownerId, where),
    resourceGroupId: str(doc, 'resourceGroupId', '', where),
    ownerId,
    bandwidth: num(doc, 'bandwidth', acceptingRegionId === region ? -1 : 1024, where),
    gmtCreate,
    gmtModified: time(doc, 'gmtModified', gmtCreate, where),
    gmtExpired: time(doc, 'gmtExpired', -1, where),
    linkType: str(doc, 'linkType', DEFAULT_LINK_TYPE, where),
    managedService: str(doc, 'managedService', '', where),
  };
  return new Conn(id, region, tags, attrs, 0);
}
