// The emulator's state in one place: estate, authenticator, quotas, faults, ClientTokens, call log, stats.
// Must not speak HTTP: server.ts and admin.ts translate requests into calls on this object.
import { KNOWN_REGIONS } from '../model.js';
import type { ActionEnv } from './actions.js';
import { Authenticator } from './auth.js';
import { CallLog, CallStats } from './call-log.js';
import { FaultInjector, validateFaults } from './faults.js';
import { DEFAULT_GENERATE_REGIONS, generateConns } from './generate.js';
import { QuotaGate } from './quotas.js';
import { type Conn, EstateStore, fromDoc } from './store.js';
import { TtlMap } from './ttl-map.js';
import type { CallRecord, EmulatorCredential, EmulatorOptions, GenerateOptions } from './types.js';

/** The access key used when none is configured. */
export const DEFAULT_CREDENTIALS: readonly EmulatorCredential[] = Object.freeze([
  Object.freeze({ accessKeyId: 'tagwarden-test', accessKeySecret: 'tagwarden-test-secret' }),
]);
export const DEFAULT_CLIENT_TOKEN_TTL_MS = 24 * 3600_000;
export const DEFAULT_NONCE_TTL_MS = 15 * 60_000;
export const DEFAULT_MAX_CALL_LOG = 200_000;

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

  constructor(options: EmulatorOptions) {
    this.now = options.now ?? Date.now;
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
    if (options.fixture !== undefined) this.load(options.fixture.resources, false);
    if (options.generate !== undefined) this.generate(options.generate, false);
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
  }

  private replaceEstate(): void {
    this.store.clear();
    // Results of calls against the old estate must not be replayed against the new one.
    this.tokens.clear();
  }
}
