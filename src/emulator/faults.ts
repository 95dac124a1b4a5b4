// Fault injection: one seeded draw per signed API call picks at most one fault, plus latency.
// Must not apply faults itself: the server acts on the drawn outcome.
import { API_NAMES, type ApiName } from '../model.js';
import { Mulberry32 } from './prng.js';
import type { FaultConfig, FaultKind } from './types.js';

/** The fault kinds in draw order (their probabilities stack in this order). */
export const FAULT_KINDS: readonly FaultKind[] = [
  'serviceUnavailable', 'internalError', 'reset', 'applyThenDrop', 'html502', 'throttle',
  'unsuccessful', 'noPermission', 'conflict', 'invalidTagKey',
];

/** The actions whose answer has a `Success` field, the only ones the `unsuccessful` fault applies to. */
export const SUCCESS_FIELD_ACTIONS: readonly ApiName[] = ['TagResources', 'UnTagResources'];

/** What one call gets: a fault (or none) and the latency to add. */
export interface FaultDraw {
  fault: FaultKind | null;
  delayMs: number;
}

const NO_FAULT: FaultDraw = Object.freeze({ fault: null, delayMs: 0 });

/** Validates a FaultConfig from an untrusted source (admin API, CLI); throws an Error naming the field. */
export function validateFaults(input: unknown): FaultConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new Error('faults: must be an object');
  const cfg = input as Record<string, unknown>;
  const out: FaultConfig = {};
  for (const [key, value] of Object.entries(cfg)) {
    if ((FAULT_KINDS as readonly string[]).includes(key)) {
      if (typeof value !== 'number' || !(value >= 0 && value <= 1)) throw new Error(`faults.${key}: must be a probability 0..1`);
      out[key as FaultKind] = value;
    } else if (key === 'latencyMs' || key === 'jitterMs' || key === 'seed') {
      if (typeof value !== 'number' || !Number.isFinite(value) || (key !== 'seed' && value < 0)) {
        throw new Error(`faults.${key}: must be a ${key === 'seed' ? 'number' : 'non-negative number'}`);
      }
      out[key] = value;
    } else if (key === 'throttleStatus') {
      if (value !== 400 && value !== 429) throw new Error('faults.throttleStatus: must be 400 or 429');
      out.throttleStatus = value;
    } else if (key === 'retryAfterMs') {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 3_600_000) {
        throw new Error('faults.retryAfterMs: must be an integer 0..3600000');
      }
      out.retryAfterMs = value;
    } else if (key === 'actions') {
      if (!Array.isArray(value) || !value.every((a) => (API_NAMES as readonly unknown[]).includes(a))) {
        throw new Error(`faults.actions: must list actions of ${API_NAMES.join(', ')}`);
      }
      out.actions = value as ApiName[];
    } else if (key === 'regions') {
      if (!Array.isArray(value) || !value.every((r) => typeof r === 'string')) throw new Error('faults.regions: must be a list of regions');
      out.regions = value as string[];
    } else {
      throw new Error(`faults.${key}: unknown field; valid: ${[...FAULT_KINDS, 'latencyMs', 'jitterMs', 'throttleStatus', 'retryAfterMs', 'actions', 'regions', 'seed'].join(', ')}`);
    }
  }
  return out;
}

/** Draws faults from a FaultConfig with its own seeded stream. */
export class FaultInjector {
  private config: FaultConfig = {};
  private rng = new Mulberry32(0);

  constructor(config: FaultConfig = {}) {
    this.set(config);
  }

  /** Replaces the config and restarts the seeded stream. */
  set(config: FaultConfig): void {
    this.config = structuredClone(config);
    this.rng = new Mulberry32(config.seed ?? 0);
  }

  get(): FaultConfig {
    return structuredClone(this.config);
  }

  /** The fault and latency for one call of `action` in `region`. */
  draw(action: ApiName, region: string): FaultDraw {
    const c = this.config;
    if (c.actions !== undefined && !c.actions.includes(action)) return NO_FAULT;
    if (c.regions !== undefined && !c.regions.includes(region)) return NO_FAULT;
    let fault: FaultKind | null = null;
    const anyFault = FAULT_KINDS.some((k) => (c[k] ?? 0) > 0);
    if (anyFault) {
      const u = this.rng.float();
      let edge = 0;
      for (const kind of FAULT_KINDS) {
        edge += c[kind] ?? 0;
        if (u < edge) {
          fault = kind;
          break;
        }
      }
      // Only answers with a Success field can say Success=false; the draw is still spent, so streams stay aligned.
      if (fault === 'unsuccessful' && !SUCCESS_FIELD_ACTIONS.includes(action)) fault = null;
    }
    const jitter = (c.jitterMs ?? 0) > 0 ? this.rng.float() * (c.jitterMs ?? 0) : 0;
    const delayMs = (c.latencyMs ?? 0) + jitter;
    return fault === null && delayMs === 0 ? NO_FAULT : { fault, delayMs };
  }
}
