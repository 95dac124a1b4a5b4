// CloudEvents 1.0 structured JSON as EventBridge's HTTP target delivers it: one event, or a batch (a JSON
// array, or an object with an `events` array). Checks the envelope only and reads fields without recursion,
// so a deep or huge `data` costs no more than its parse.
import { TagwardenError } from '../errors.js';

/** The CloudEvents context attributes tagwarden reads, plus the event's `data`. */
export interface CloudEvent {
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly specversion: '1.0';
  /** RFC 3339; absent when the producer gave none. */
  readonly time?: string;
  readonly subject?: string;
  /** EventBridge's extension attributes. */
  readonly aliyunaccountid?: string;
  readonly aliyunregionid?: string;
  readonly data: unknown;
}

export interface EnvelopeLimits {
  /** Most events one request may carry. */
  maxEvents: number;
}

/** Bounds on fields; beyond them the event is refused (CloudEvents sets none; these are far above real ones). */
export const FIELD_LIMITS = { id: 256, source: 512, type: 256, subject: 1024, time: 64, account: 64, region: 64 } as const;

// RFC 3339 date-time (what CloudEvents `time` must be), with an optional fraction and a Z or offset.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function text(event: Record<string, unknown>, name: keyof typeof FIELD_LIMITS, at: string, problems: string[], required: boolean): string | undefined {
  const value = Object.hasOwn(event, name) ? event[name] : undefined;
  if (value === undefined || value === null) {
    if (required) problems.push(`${at}.${name}: required (CloudEvents 1.0)`);
    return undefined;
  }
  if (typeof value !== 'string' || value.length === 0) {
    problems.push(`${at}.${name}: must be a non-empty string`);
    return undefined;
  }
  if (value.length > FIELD_LIMITS[name]) {
    problems.push(`${at}.${name}: at most ${FIELD_LIMITS[name]} characters (got ${value.length})`);
    return undefined;
  }
  return value;
}

/** One event's envelope; pushes problems naming `at.field`. */
function readEvent(value: unknown, at: string, problems: string[]): CloudEvent | undefined {
  if (!isObject(value)) {
    problems.push(`${at}: must be a JSON object (a CloudEvent)`);
    return undefined;
  }
  const before = problems.length;
  const specversion = Object.hasOwn(value, 'specversion') ? value['specversion'] : undefined;
  if (specversion !== '1.0') problems.push(`${at}.specversion: must be "1.0"`);
  const id = text(value, 'id', at, problems, true);
  const source = text(value, 'source', at, problems, true);
  const type = text(value, 'type', at, problems, true);
  const time = text(value, 'time', at, problems, false);
  if (time !== undefined && (!RFC3339.test(time) || Number.isNaN(Date.parse(time)))) {
    problems.push(`${at}.time: must be an RFC 3339 timestamp such as 2026-12-01T09:00:00Z`);
  }
  const subject = text(value, 'subject', at, problems, false);
  const account = readExtension(value, 'aliyunaccountid', at, problems);
  const region = readExtension(value, 'aliyunregionid', at, problems);
  let data: unknown = Object.hasOwn(value, 'data') ? value['data'] : undefined;
  if (data === undefined && Object.hasOwn(value, 'data_base64')) {
    problems.push(`${at}.data_base64: binary data is not accepted; send data as JSON`);
  }
  // EventBridge may deliver `data` as a JSON string when the source wrote it so.
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data) as unknown;
    } catch {
      problems.push(`${at}.data: a string that is not JSON`);
    }
  }
  if (problems.length > before || id === undefined || source === undefined || type === undefined) return undefined;
  return {
    id,
    source,
    type,
    specversion: '1.0',
    ...(time !== undefined ? { time } : {}),
    ...(subject !== undefined ? { subject } : {}),
    ...(account !== undefined ? { aliyunaccountid: account } : {}),
    ...(region !== undefined ? { aliyunregionid: region } : {}),
    data,
  };
}

function readExtension(event: Record<string, unknown>, name: 'aliyunaccountid' | 'aliyunregionid', at: string, problems: string[]): string | undefined {
  const value = Object.hasOwn(event, name) ? event[name] : undefined;
  if (value === undefined || value === null || value === '') return undefined;
  const limit = name === 'aliyunaccountid' ? FIELD_LIMITS.account : FIELD_LIMITS.region;
  if ((typeof value !== 'string' && typeof value !== 'number') || String(value).length > limit) {
    problems.push(`${at}.${name}: must be a string of at most ${limit} characters`);
    return undefined;
  }
  return String(value);
}

/**
 * Reads a delivery: a CloudEvent, a JSON array of them (`application/cloudevents-batch+json`), or an object
 * with an `events` array. Throws PAYLOAD_INVALID listing every bad field (`events[3].id: required`); a
 * request with one bad event is refused whole, so the sender retries or dead-letters it and nothing is lost.
 */
export function parseDelivery(body: unknown, limits: EnvelopeLimits): CloudEvent[] {
  let items: unknown[];
  let batched = true;
  if (Array.isArray(body)) items = body;
  else if (isObject(body) && Array.isArray(body['events']) && !Object.hasOwn(body, 'specversion')) items = body['events'] as unknown[];
  else {
    items = [body];
    batched = false;
  }
  if (items.length === 0) throw invalid(['(body): an empty batch; send at least one event']);
  if (items.length > limits.maxEvents) {
    throw invalid([`(body): ${items.length} events in one request; at most ${limits.maxEvents} (TAGWARDEN_EVENTS_MAX_PER_REQUEST)`]);
  }
  const problems: string[] = [];
  const events: CloudEvent[] = [];
  for (let i = 0; i < items.length; i += 1) {
    const event = readEvent(items[i], batched ? `events[${i}]` : 'event', problems);
    if (event) events.push(event);
    if (problems.length >= 20) {
      problems.push('... (more problems not listed)');
      break;
    }
  }
  if (problems.length > 0) throw invalid(problems);
  return events;
}

function invalid(problems: string[]): TagwardenError {
  return new TagwardenError('PAYLOAD_INVALID', `invalid events: ${problems.join('; ')}`, { details: { problems } });
}
