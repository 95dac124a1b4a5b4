// Deterministic estate generator: resource i depends only on (seed, i, regions), so a smaller estate is a
// prefix of a larger one. The tag vocabulary below is what the shipped policies rely on: keep it exactly.
import { Mulberry32, mix32 } from './prng.js';
import { type AttrSource, type ConnAttrs, Conn, DEFAULT_LINK_TYPE, toDoc } from './store.js';
import type { EmulatorResource } from './types.js';

/** Regions used when none are given. */
export const DEFAULT_GENERATE_REGIONS: readonly string[] = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing'];

/** The owner teams of generated connections. */
export const GENERATED_TEAMS: readonly string[] = [
  'team-alpha', 'team-beta', 'team-gamma', 'team-delta', 'team-epsilon', 'team-zeta',
];
/** The `project` values of generated connections. */
export const GENERATED_PROJECTS: readonly string[] = [
  'apollo', 'borealis', 'cascade', 'dynamo', 'everest', 'fjord', 'granite', 'helix', 'ionosphere', 'juniper',
];

const ID_SPACE = 36 ** 8; // the unique 8-char suffix of generated ids
const ID_MULTIPLIER = 1_000_003; // coprime to 36, so i -> (i * M + offset) mod 36^8 is a bijection

const CROSS_REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing', 'cn-shenzhen', 'ap-southeast-1', 'eu-central-1'];
const CROSS_BANDWIDTHS = [100, 200, 500, 1024, 2048];
const BASE_CREATED = 1672531200; // 2023-01-01T00:00:00Z
const TWO_YEARS = 2 * 365 * 86400;
const DAY = 86400;

// Interned value tables: every generated resource shares these strings.
const TEAM_SHORT = GENERATED_TEAMS.map((t) => t.slice('team-'.length));
const COST_CENTERS = Array.from({ length: 1000 }, (_, n) => `cc-${1000 + n}`);
const DATES = Array.from({ length: 365 }, (_, n) => new Date(Date.UTC(2025, 0, 1 + n)).toISOString().slice(0, 10));
const TICKET_KEYS = Array.from({ length: 900 }, (_, n) => `tmp-ticket-${100 + n}`);
const SCRATCH_KEYS = Array.from({ length: 99 }, (_, n) => `scratch-${1 + n}`);
const FINANCE_VALUES = Array.from({ length: 100 }, (_, n) => `fd-${100 + n}`);
const LEGACY_VALUES = Array.from({ length: 100 }, (_, n) => `LBC-${1000 + n}`);
const SCRATCH_VALUES = ['yes', 'true', 'keep-until-friday', 'ask-ops'];
const TMP_FIXED_KEYS = ['tmp-debug', 'tmp-test', 'tmp-migration'];

const DIGITS = Array.from('0123456789abcdefghijklmnopqrstuvwxyz', (ch) => ch.charCodeAt(0));
const codes: number[] = [];

/** Appends `count` base-36 digits of `value` (least significant first) to `codes`. */
function digits(value: number, count: number): void {
  let v = value;
  for (let k = 0; k < count; k++) {
    codes.push(DIGITS[v % 36] ?? 48);
    v = Math.floor(v / 36);
  }
}

/** Builds one flat string from `prefix` and the collected digit codes (no per-character concatenation). */
function flush(prefix: string): string {
  const s = String.fromCharCode.apply(null, codes);
  codes.length = 0;
  return prefix + s;
}

function alnum(rng: Mulberry32, n: number): string {
  for (let k = 0; k < n; k++) digits(rng.next(), 1);
  return flush('');
}

function vpcId(seed: number, index: number): string {
  const h = mix32(seed ^ 0x5f3759df, index);
  digits(h, 5);
  digits(mix32(h, 1), 5);
  digits(mix32(h, 2), 5);
  digits(mix32(h, 3), 5);
  return flush('vpc-');
}

/** Per-seed constants: resource groups, the account, the id offset. */
interface SeedContext {
  seed: number;
  groups: string[];
  ownerId: number;
  peerOwnerId: number;
  idOffset: number;
}

function seedContext(seed: number): SeedContext {
  const rng = new Mulberry32(mix32(seed, 0x7e57));
  const groups = Array.from({ length: 5 }, () => `rg-acfm${alnum(rng, 11)}`);
  const ownerId = 1_000_000_000_000_000 + rng.int(900_000_000) * 1_000_000 + rng.int(1_000_000);
  const peerOwnerId = 1_000_000_000_000_000 + rng.int(900_000_000) * 1_000_000 + rng.int(1_000_000);
  const idOffset = (rng.next() * 655 + rng.next()) % ID_SPACE;
  return { seed: seed | 0, groups, ownerId, peerOwnerId, idOffset };
}

/** The seed of connection i's tag stream (id, owner, tags) and of its attribute stream. */
function tagStream(ctx: SeedContext, i: number): Mulberry32 {
  return new Mulberry32(mix32(ctx.seed, i));
}
function attrStream(ctx: SeedContext, i: number): Mulberry32 {
  return new Mulberry32(mix32(ctx.seed ^ 0x0a77e5, i));
}

/** Derives the attributes of generated connections on demand, so the estate keeps only ids and tags. */
class GeneratedAttrs implements AttrSource {
  constructor(
    private readonly ctx: SeedContext,
    private readonly regions: readonly string[],
  ) {}

  attrsOf(i: number): ConnAttrs {
    const ctx = this.ctx;
    const region = this.regions[i % this.regions.length] ?? 'cn-hangzhou';
    const t = tagStream(ctx, i);
    t.next(); // the two id draws
    t.next();
    t.float(); // the owner draw
    const team = t.int(GENERATED_TEAMS.length); // names the connection, matching its owner tag when that is a team
    const rng = attrStream(ctx, i);
    const statusDraw = rng.float();
    const status = statusDraw < 0.88 ? 'Activated' : statusDraw < 0.93 ? 'Accepting' : statusDraw < 0.97 ? 'Updating' : 'Expired';
    const crossRegion = rng.float() >= 0.75;
    const acceptingRegionId = crossRegion ? (CROSS_REGIONS[rng.int(CROSS_REGIONS.length)] ?? region) : region;
    const bandwidth = acceptingRegionId === region ? -1 : (CROSS_BANDWIDTHS[rng.int(CROSS_BANDWIDTHS.length)] ?? 1024);
    const gmtCreate = BASE_CREATED + rng.int(TWO_YEARS);
    const gmtModified = gmtCreate + rng.int(180 * DAY);
    // Neighbouring connections share requester VPCs, as hub-and-spoke estates do.
    const accepterIndex = 0x40000000 + rng.int(0x3fffffff);
    return {
      name: `peer-${TEAM_SHORT[team] ?? 'alpha'}-${i}`,
      description: '',
      status,
      bizStatus: rng.float() < 0.98 ? 'Normal' : 'FinancialLocked',
      vpcId: vpcId(ctx.seed, Math.floor(i / 4)),
      acceptingVpcId: vpcId(ctx.seed, accepterIndex),
      acceptingRegionId,
      acceptingOwnerUid: rng.float() < 0.9 ? ctx.ownerId : ctx.peerOwnerId,
      resourceGroupId: ctx.groups[rng.int(ctx.groups.length)] ?? 'rg-acfm',
      ownerId: ctx.ownerId,
      bandwidth,
      gmtCreate,
      gmtModified,
      gmtExpired: status === 'Accepting' || status === 'Expired' ? gmtCreate + 7 * DAY : -1,
      // Constants, not draws: the streams above (and every estate generated before) stay as they were.
      linkType: DEFAULT_LINK_TYPE,
      managedService: '',
    };
  }
}

/** Builds generated connection number `i` (internal compact form): id and tags; attributes come from `source`. */
function generateOne(ctx: SeedContext, i: number, region: string, source: AttrSource): Conn {
  const rng = tagStream(ctx, i);
  digits(rng.next(), 6);
  digits(rng.next(), 6);
  // The last 8 characters are a bijection of i: ids are unique by construction.
  digits((i * ID_MULTIPLIER + ctx.idOffset) % ID_SPACE, 8);
  const id = flush('pcc-');
  const tags: string[] = [];

  const ownerDraw = rng.float();
  const team = rng.int(GENERATED_TEAMS.length);
  if (ownerDraw < 0.9) tags.push('owner', GENERATED_TEAMS[team] ?? 'team-alpha');
  else if (ownerDraw < 0.95) tags.push('owner', 'unknown');

  if (rng.float() < 0.8) tags.push('cost-center', COST_CENTERS[rng.int(COST_CENTERS.length)] ?? 'cc-1000');
  const envDraw = rng.float();
  tags.push('env', envDraw < 0.5 ? 'prod' : envDraw < 0.75 ? 'staging' : 'dev');
  if (rng.float() < 0.6) tags.push('project', GENERATED_PROJECTS[rng.int(GENERATED_PROJECTS.length)] ?? 'apollo');

  if (rng.float() < 0.2) {
    const howMany = rng.float() < 0.5 ? 1 : 2;
    const first = rng.int(4);
    const second = (first + 1 + rng.int(3)) % 4;
    for (const kind of howMany === 1 ? [first] : [first, second]) {
      const key = kind < 3 ? (TMP_FIXED_KEYS[kind] ?? 'tmp-debug') : (TICKET_KEYS[rng.int(TICKET_KEYS.length)] ?? 'tmp-ticket-100');
      tags.push(key, DATES[rng.int(DATES.length)] ?? '2025-01-01');
    }
  }
  if (rng.float() < 0.05) {
    tags.push(SCRATCH_KEYS[rng.int(SCRATCH_KEYS.length)] ?? 'scratch-1', SCRATCH_VALUES[rng.int(SCRATCH_VALUES.length)] ?? 'yes');
  }
  if (rng.float() < 0.1) tags.push('FinanceDept', FINANCE_VALUES[rng.int(FINANCE_VALUES.length)] ?? 'fd-100');
  if (rng.float() < 0.08) tags.push('legacy-billing-code', LEGACY_VALUES[rng.int(LEGACY_VALUES.length)] ?? 'LBC-1000');
  return new Conn(id, region, tags.slice(), source, i); // slice: an exact-length copy, push() over-allocates
}

/** Generated connections in compact form (what the emulator loads). */
export function* generateConns(count: number, seed: number, regions: readonly string[] = DEFAULT_GENERATE_REGIONS): Generator<Conn> {
  if (!Number.isInteger(count) || count < 0) throw new RangeError('count must be a non-negative integer');
  if (count > ID_SPACE) throw new RangeError('count is larger than the generated id space');
  if (regions.length === 0) throw new RangeError('regions must not be empty');
  const ctx = seedContext(seed);
  const source = new GeneratedAttrs(ctx, [...regions]);
  for (let i = 0; i < count; i++) yield generateOne(ctx, i, regions[i % regions.length] ?? 'cn-hangzhou', source);
}

/**
 * A deterministic estate of `count` peering connections: the same (count, seed, regions) always gives the
 * same resources, and resource i does not depend on `count`. Ids are `pcc-` + 20 lowercase alphanumerics,
 * unique; resource i lives in `regions[i % regions.length]`; never more than 20 tags, no system tags.
 */
export function* generateEstate(count: number, seed: number, regions?: readonly string[]): Generator<EmulatorResource> {
  for (const c of generateConns(count, seed, regions)) yield toDoc(c);
}
