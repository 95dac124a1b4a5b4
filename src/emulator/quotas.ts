// Flow control: calls per (region, action) in fixed windows aligned to the epoch (reference §2).
// Must not decide what a throttled call looks like on the wire: it only says whether a call may pass.
import { API_NAMES, type ApiName, DOCUMENTED_QUOTAS } from '../model.js';
import type { QuotaState, QuotaUpdate } from './types.js';

interface Counter {
  window: number;
  count: number;
}

function checkLimits(quotas: Partial<Record<string, number>>, where: string): void {
  for (const [name, value] of Object.entries(quotas)) {
    if (!(API_NAMES as readonly string[]).includes(name)) throw new Error(`${where}: unknown action "${name}"`);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw new Error(`${where}.${name}: must be a non-negative integer`);
    }
  }
}

/** Fixed-window counters; one counter per (region, action). */
export class QuotaGate {
  private quotas: Record<ApiName, number> = { ...DOCUMENTED_QUOTAS };
  private regionQuotas: Record<string, Partial<Record<ApiName, number>>> = {};
  private windowMs = 60_000;
  private readonly counters = new Map<string, Counter>();

  constructor(
    private readonly now: () => number,
    initial: QuotaUpdate = {},
  ) {
    this.update(initial);
  }

  /** Replaces the given fields (validated first; nothing changes on error) and resets every counter. */
  update(next: QuotaUpdate): void {
    if (next.quotas !== undefined) checkLimits(next.quotas, 'quotas');
    for (const [region, q] of Object.entries(next.regionQuotas ?? {})) checkLimits(q, `regionQuotas.${region}`);
    if (next.windowMs !== undefined && (!Number.isInteger(next.windowMs) || next.windowMs <= 0)) {
      throw new Error('windowMs: must be a positive integer');
    }
    if (next.quotas !== undefined) this.quotas = { ...DOCUMENTED_QUOTAS, ...next.quotas };
    if (next.regionQuotas !== undefined) this.regionQuotas = structuredClone(next.regionQuotas);
    if (next.windowMs !== undefined) this.windowMs = next.windowMs;
    this.counters.clear();
  }

  limit(region: string, action: ApiName): number {
    return this.regionQuotas[region]?.[action] ?? this.quotas[action];
  }

  /** Counts the call and says whether it is within its window's quota (excess calls are counted too). */
  admit(region: string, action: ApiName): boolean {
    const window = Math.floor(this.now() / this.windowMs);
    const key = `${region}|${action}`;
    let c = this.counters.get(key);
    if (c === undefined || c.window !== window) {
      c = { window, count: 0 };
      this.counters.set(key, c);
    }
    c.count++;
    return c.count <= this.limit(region, action);
  }

  /** Milliseconds until the current window ends. */
  msToNextWindow(): number {
    return this.windowMs - (this.now() % this.windowMs);
  }

  state(): QuotaState {
    const window = Math.floor(this.now() / this.windowMs);
    const current: Record<string, number> = {};
    for (const [key, c] of this.counters) if (c.window === window) current[key] = c.count;
    return { quotas: { ...this.quotas }, regionQuotas: structuredClone(this.regionQuotas), windowMs: this.windowMs, current };
  }
}
