// The emulator's state in one place: estate, authenticator, quotas, faults, ClientTokens, call log, stats.
// Must not speak HTTP: server.ts and admin.ts translate requests into calls on this object.
import { KNOWN_REGIONS } from '../model.js';
import { type MemberAccount, checkAccount } from './accounts.js';
import type { ActionEnv } from './actions.js';
import { ApiFailure } from './api-errors.js';
import { Authenticator } from './auth.js';
import { CallLog, CallStats } from './call-log.js';
import { FaultInjector, validateFaults } from './faults.js';
import { DEFAULT_GENERATE_REGIONS, generateConns } from './generate.js';
import { QuotaGate } from './quotas.js';
import { type Conn, EstateStore, fromDoc } from './store.js';
import { TtlMap } from './ttl-map.js';
import type { AuthResult } from './auth.js';
import type {
  CallRecord, DeletedBehaviour, EmulatorAccount, EmulatorBehaviour, PagingBehaviour, EmulatorCredential, EmulatorLimits, EmulatorOptions, GenerateOptions,
} from './types.js';

/** The access key used when none is configured. */
export const DEFAULT_CREDENTIALS: readonly EmulatorCredential[] = Object.freeze([
  Object.freeze({ accessKeyId: 'tagwarden-test', accessKeySecret: 'tagwarden-test-secret' }),
]);
export const DEFAULT_CLIENT_TOKEN_TTL_MS = 24 * 3600_000;
export const DEFAULT_NONCE_TTL_MS = 15 * 60_000;
export const DEFAULT_MAX_CALL_LOG = 200_000;

/** The behaviour in force: every field set. */
export interface ResolvedBehaviour {
  deleted: Required<DeletedBehaviour>;
  limits: Required<EmulatorLimits>;
  paging: Required<PagingBehaviour>;
}

const DEFAULT_BEHAVIOUR: ResolvedBehaviour = Object.freeze({
  deleted: Object.freeze({ get: 'found', list: 'listed', tags: 'ok' } as const),
  limits: Object.freeze({ listConnectionsTags: 10 } as const),
  paging: Object.freeze({ repeat: 'none' } as const),
});

const CHOICES = {
  get: ['found', 'not-found'],
  list: ['listed', 'hidden'],
  tags: ['ok', 'not-found', 'incorrect-status'],
} as const;

/** Validates a behaviour update from an untrusted source; throws an Error naming the field. */
export function validateBehaviour(input: unknown): EmulatorBehaviour {
  const obj = (v: unknown, where: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}: must be an object`);
    return v as Record<string, unknown>;
  };
  const doc = obj(input, 'behaviour');
  const out: EmulatorBehaviour = {};
  for (const key of Object.keys(doc)) {
    if (key !== 'deleted' && key !== 'limits' && key !== 'paging') throw new Error(`behaviour.${key}: unknown field; valid: deleted, limits, paging`);
  }
  if (doc['deleted'] !== undefined) {
    const d = obj(doc['deleted'], 'behaviour.deleted');
    const deleted: Record<string, string> = {};
    for (const [key, value] of Object.entries(d)) {
      const valid = (CHOICES as Record<string, readonly string[]>)[key];
      if (valid === undefined) throw new Error(`behaviour.deleted.${key}: unknown field; valid: ${Object.keys(CHOICES).join(', ')}`);
      if (typeof value !== 'string' || !valid.includes(value)) throw new Error(`behaviour.deleted.${key}: must be one of ${valid.join(', ')}`);
      deleted[key] = value;
    }
    out.deleted = deleted as DeletedBehaviour;
  }
  if (doc['limits'] !== undefined) {
    const l = obj(doc['limits'], 'behaviour.limits');
    for (const [key, value] of Object.entries(l)) {
      if (key !== 'listConnectionsTags') throw new Error(`behaviour.limits.${key}: unknown field; valid: listConnectionsTags`);
      if (value !== 10 && value !== 20) throw new Error('behaviour.limits.listConnectionsTags: must be 10 or 20');
    }
    out.limits = l as EmulatorLimits;
  }
  if (doc['paging'] !== undefined) {
    const pg = obj(doc['paging'], 'behaviour.paging');
    const repeats = ['none', 'in-page', 'across-pages'];
    for (const [key, value] of Object.entries(pg)) {
      if (key !== 'repeat') throw new Error(`behaviour.paging.${key}: unknown field; valid: repeat`);
      if (typeof value !== 'string' || !repeats.includes(value)) throw new Error(`behaviour.paging.repeat: must be one of ${repeats.join(', ')}`);
    }
    out.paging = pg as PagingBehaviour;
  }
  return out;
}

/** A remembered successful ClientToken call. */
export interface TokenResult {
  fingerprint: string;
  /** The response body as first sent (same RequestId on replay). */
  json: string;
}

export class EmulatorCore implements ActionEnv {
  readonly now: () => number;
  readonly store = new EstateStore();
  readonly auth: Authenticator;
  readonly quotas: QuotaGate;
  readonly faults: FaultInjector;
  readonly tokens: TtlMap<TokenResult>;
  readonly log: CallLog;
  readonly stats = new CallStats();
  private readonly regionNames = new Set<string>(KNOWN_REGIONS);
  /** Member accounts by ID (empty: a single-account emulator). */
  readonly members = new Map<string, MemberAccount>();
  /** Lifetime override of AssumeRole credentials, seconds. */
  readonly stsSessionSeconds: number | undefined;
  behaviour: ResolvedBehaviour = DEFAULT_BEHAVIOUR;

  constructor(private readonly options: EmulatorOptions) {
    this.now = options.now ?? Date.now;
    this.stsSessionSeconds = options.stsSessionSeconds;
    const credentials = options.credentials ?? DEFAULT_CREDENTIALS;
    if (credentials.length === 0) throw new Error('credentials: at least one access key is needed');
    this.auth = new Authenticator(credentials, options.nonceTtlMs ?? DEFAULT_NONCE_TTL_MS, this.now);
    this.quotas = new QuotaGate(this.now, {
      ...(options.quotas === undefined ? {} : { quotas: options.quotas }),
      ...(options.regionQuotas === undefined ? {} : { regionQuotas: options.regionQuotas }),
      ...(options.quotaWindowMs === undefined ? {} : { windowMs: options.quotaWindowMs }),
    });
    this.faults = new FaultInjector(validateFaults(options.faults ?? {}));
    this.tokens = new TtlMap(options.clientTokenTtlMs ?? DEFAULT_CLIENT_TOKEN_TTL_MS, this.now);
    this.log = new CallLog(options.maxCallLog ?? DEFAULT_MAX_CALL_LOG);
    if (options.behaviour !== undefined) this.setBehaviour(validateBehaviour(options.behaviour));
    if (options.fixture !== undefined) this.load(options.fixture.resources, false);
    if (options.generate !== undefined) this.generate(options.generate, false);
    if (options.accounts !== undefined) this.setAccounts(options.accounts);
  }

  /** Replaces the member accounts (validated first); an account kept by ID keeps its estate and counters. */
  setAccounts(specs: readonly unknown[]): void {
    const checked = specs.map((a, i) => checkAccount(a, `accounts[${i}]`));
    const ids = new Set<string>();
    for (const a of checked) {
      if (ids.has(a.id)) throw new Error(`accounts: duplicate id "${a.id}"`);
      ids.add(a.id);
    }
    const built = checked.map((spec) => this.members.get(spec.id) ?? this.member(spec));
    this.members.clear();
    built.forEach((m, i) => {
      m.spec = checked[i] ?? m.spec;
      this.members.set(m.spec.id, m);
    });
  }

  private member(spec: EmulatorAccount): MemberAccount {
    const o = this.options;
    const core = new EmulatorCore({
      ...(o.credentials === undefined ? {} : { credentials: o.credentials }),
      now: this.now,
      ...(o.quotaWindowMs === undefined ? {} : { quotaWindowMs: o.quotaWindowMs }),
      ...(o.clientTokenTtlMs === undefined ? {} : { clientTokenTtlMs: o.clientTokenTtlMs }),
      ...(o.maxCallLog === undefined ? {} : { maxCallLog: o.maxCallLog }),
      ...(spec.quotas === undefined ? {} : { quotas: spec.quotas }),
      ...(spec.regionQuotas === undefined ? {} : { regionQuotas: spec.regionQuotas }),
      ...(spec.faults === undefined ? {} : { faults: spec.faults }),
      ...(spec.fixture === undefined ? {} : { fixture: spec.fixture }),
      ...(spec.generate === undefined ? {} : { generate: spec.generate }),
    });
    return { spec, core, stsCalls: {} };
  }

  /** The state a verified caller acts on: its member account's for an STS key, else this one. */
  targetOf(auth: AuthResult): EmulatorCore {
    if (auth.account === undefined) return this;
    const member = this.members.get(auth.account);
    // The key's account left the directory: its keys are void (never fall back to this account's estate).
    if (member === undefined) throw new ApiFailure('InvalidAccessKeyId.NotFound', 'Specified access key is not found.');
    return member.core;
  }

  /** Replaces the given parts of the behaviour (unnamed fields of a given part return to their defaults). */
  setBehaviour(next: EmulatorBehaviour): ResolvedBehaviour {
    this.behaviour = {
      deleted: next.deleted === undefined ? this.behaviour.deleted : { ...DEFAULT_BEHAVIOUR.deleted, ...next.deleted },
      limits: next.limits === undefined ? this.behaviour.limits : { ...DEFAULT_BEHAVIOUR.limits, ...next.limits },
      paging: next.paging === undefined ? this.behaviour.paging : { ...DEFAULT_BEHAVIOUR.paging, ...next.paging },
    };
    return this.behaviour;
  }

  knownRegion(region: string): boolean {
    return this.regionNames.has(region);
  }

  /** Validates every document first, then adds them (replacing the estate when `replace`). */
  load(docs: readonly unknown[], replace: boolean): number {
    const conns: Conn[] = [];
    const seen = new Set<string>();
    docs.forEach((doc, i) => {
      const c = fromDoc(doc, i);
      if (seen.has(c.id)) throw new Error(`resources[${i}]: duplicate id "${c.id}"`);
      seen.add(c.id);
      conns.push(c);
    });
    if (replace) this.replaceEstate();
    for (const c of conns) this.put(c);
    return conns.length;
  }

  /** Adds a generated estate (replacing the current one when `replace`). */
  generate(opts: GenerateOptions, replace: boolean): number {
    const regions = opts.regions ?? DEFAULT_GENERATE_REGIONS;
    for (const r of regions) this.regionNames.add(r);
    const conns = generateConns(opts.count, opts.seed, regions); // validates before anything changes
    const first = conns.next();
    if (replace) this.replaceEstate();
    if (first.done !== true) this.put(first.value);
    for (const c of conns) this.put(c);
    return opts.count;
  }

  put(c: Conn): void {
    this.regionNames.add(c.region);
    this.store.put(c);
  }

  /** Live resources per region. */
  resourceCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of this.store.regionNames()) out[name] = this.store.region(name)?.live ?? 0;
    return out;
  }

  record(r: CallRecord): void {
    this.log.push(r);
    this.stats.record(r);
    // A member's calls are also in its own log and stats (`/_emulator/accounts/<id>/calls`).
    if (r.account !== undefined) {
      const m = this.members.get(r.account)?.core;
      if (m !== undefined && m !== this) {
        m.log.push(r);
        m.stats.record(r);
      }
    }
  }

  private replaceEstate(): void {
    this.store.clear();
    // Results of calls against the old estate must not be replayed against the new one.
    this.tokens.clear();
  }
}
