// Typed client of the emulator's admin API (fetch), for tests, benchmarks and the demo.
// Must not talk to the signed API: that goes through the official SDK like a real client.
import type {
  CallLogPage, EmulatorAccount, EmulatorBehaviour, EmulatorResource, EmulatorStateDoc, EmulatorStats, FaultConfig, GenerateOptions, QuotaState,
  QuotaUpdate,
} from './types.js';

/** The admin API of a running emulator. Every method throws an Error on a non-2xx answer. */
export interface EmulatorAdmin {
  health(): Promise<{ status: string; resources: number }>;
  /** The estate, optionally of one region and/or some ids. */
  getState(filter?: { region?: string; ids?: readonly string[] }): Promise<EmulatorStateDoc>;
  /** Replaces the whole estate. */
  putState(doc: EmulatorStateDoc): Promise<{ loaded: number }>;
  /** Adds or replaces some resources. */
  upsertResources(resources: EmulatorResource[]): Promise<{ loaded: number }>;
  /** Removes resources (they answer InvalidInstanceIds.NotFound afterwards). */
  deleteResources(ids: readonly string[]): Promise<{ removed: number }>;
  /** Generates an estate; replaces the current one unless `replace` is false. */
  generate(opts: GenerateOptions & { replace?: boolean }): Promise<{ generated: number }>;
  getCalls(filter?: { action?: string; since?: number; limit?: number }): Promise<CallLogPage>;
  clearCalls(): Promise<void>;
  getStats(): Promise<EmulatorStats>;
  resetStats(): Promise<void>;
  getFaults(): Promise<FaultConfig>;
  /** Replaces the fault config (and restarts its seeded stream). */
  setFaults(config: FaultConfig): Promise<FaultConfig>;
  getQuotas(): Promise<QuotaState>;
  /** Replaces the given quota fields and resets the counters. */
  setQuotas(update: QuotaUpdate): Promise<QuotaState>;
  /** Forgets every remembered ClientToken result. */
  clearClientTokens(): Promise<void>;
  /** How Deleting/Deleted connections are answered, and the disputed limits. */
  getBehaviour(): Promise<Required<EmulatorBehaviour>>;
  /** Replaces the given parts (a part given replaces that whole part; its unnamed fields return to defaults). */
  setBehaviour(update: EmulatorBehaviour): Promise<Required<EmulatorBehaviour>>;
  /** The member accounts of the emulated Resource Directory, with AssumeRole counts by outcome. */
  listAccounts(): Promise<{ accounts: EmulatorAccountInfo[] }>;
  /** Replaces the member accounts (an account kept by ID keeps its estate). */
  setAccounts(accounts: EmulatorAccount[]): Promise<{ accounts: EmulatorAccountInfo[] }>;
  /** Changes an account's trust (denied, externalId; null removes), name, status or tags. */
  updateAccount(id: string, patch: Partial<Record<'name' | 'externalId' | 'status', string | null>> & { denied?: boolean; tags?: Record<string, string> }): Promise<{ accounts: EmulatorAccountInfo[] }>;
  /** The same admin API scoped to one member account's estate, quotas, faults, calls and stats. */
  account(id: string): EmulatorAdmin;
}

/** One member account as `GET /_emulator/accounts` lists it. */
export interface EmulatorAccountInfo {
  id: string;
  name: string;
  roleName: string;
  externalId: string | null;
  denied: boolean;
  status: string;
  tags: Record<string, string>;
  /** AssumeRole calls naming this account's role, by outcome code. */
  stsCalls: Record<string, number>;
  resources: number;
}

/** A typed admin client for the emulator at `url` (e.g. `RunningEmulator.url`). */
export function createEmulatorAdmin(url: string, scope: { account?: string } = {}): EmulatorAdmin {
  const root = url.replace(/\/+$/, '');
  const base = scope.account === undefined ? `${root}/_emulator` : `${root}/_emulator/accounts/${encodeURIComponent(scope.account)}`;
  const accountsBase = `${root}/_emulator/accounts`;
  async function call<T>(method: string, path: string, body?: unknown, at = base): Promise<T> {
    const res = await fetch(`${at}${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`emulator admin ${method} ${path} failed: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }
  const qs = (entries: Record<string, string | number | undefined>): string => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(entries)) if (v !== undefined) p.set(k, String(v));
    const s = p.toString();
    return s === '' ? '' : `?${s}`;
  };
  return {
    health: () => call('GET', '/health'),
    getState: (filter = {}) => call('GET', `/state${qs({ region: filter.region, ids: filter.ids?.join(',') })}`),
    putState: (doc) => call('PUT', '/state', doc),
    upsertResources: (resources) => call('POST', '/resources', { resources }),
    deleteResources: (ids) => call('DELETE', `/resources${qs({ ids: ids.join(',') })}`),
    generate: (opts) => call('POST', '/generate', opts),
    getCalls: (filter = {}) => call('GET', `/calls${qs({ action: filter.action, since: filter.since, limit: filter.limit })}`),
    clearCalls: async () => {
      await call('DELETE', '/calls');
    },
    getStats: () => call('GET', '/stats'),
    resetStats: async () => {
      await call('DELETE', '/stats');
    },
    getFaults: () => call('GET', '/faults'),
    setFaults: (config) => call('PUT', '/faults', config),
    getQuotas: () => call('GET', '/quotas'),
    setQuotas: (update) => call('PUT', '/quotas', update),
    clearClientTokens: async () => {
      await call('DELETE', '/client-tokens');
    },
    getBehaviour: () => call('GET', '/behaviour'),
    setBehaviour: (update) => call('PUT', '/behaviour', update),
    listAccounts: () => call('GET', '', undefined, accountsBase),
    setAccounts: (accounts) => call('PUT', '', { accounts }, accountsBase),
    updateAccount: (id, patch) => call('PATCH', `/${encodeURIComponent(id)}`, patch, accountsBase),
    account: (id) => createEmulatorAdmin(root, { account: id }),
  };
}
