// Reads an ActionTrail event (as EventBridge wraps it in a CloudEvent) and decides: act on these peering
// connections, ignore it (with a bounded reason), or refuse it (the fields at fault).
//
// Documented (EventBridge "ActionTrail events", ActionTrail "management event structure"): CloudEvent `type`
// `actiontrail:ActionTrail:ApiCall` / `actiontrail:ActionTrail:ConsoleOperation`; `data` carries eventName,
// eventType, serviceName, acsRegion, eventTime, errorCode, userIdentity{type, accountId, principalId,
// accessKeyId, userName, arn}, userAgent, requestParameters, responseElements, referencedResources,
// resourceName, resourceType. UNCONFIRMED for VpcPeer, so every plausible form is accepted:
// - serviceName `VpcPeer` or `Vpc` (any case); eventSource `vpcpeer.aliyuncs.com` or `vpc.aliyuncs.com`.
// - resource IDs as flat `ResourceId.N`, a `ResourceId` array or JSON-array string, referencedResources
//   `ACS::VPC::PeerConnection`, resourceName (`;` or `,` separated), or CreateVpcPeerConnection's
//   responseElements.InstanceId.
// - requestParameters as an object or as a JSON string (requestParameterJson).
import { RESOURCE_ID } from '../queue/payloads.js';
import type { CloudEvent } from './cloudevents.js';

import { EVENT_IGNORE_REASONS, type EventIgnoreReason } from '../metrics/index.js';

/** Why an event was acknowledged without action; a small fixed set (a metrics label). */
export const IGNORE_REASONS = EVENT_IGNORE_REASONS;
export type IgnoreReason = EventIgnoreReason;

/** The actions whose events can leave a forbidden tag on a peering connection. */
export const ACTED_EVENT_NAMES = ['TagResources', 'CreateVpcPeerConnection'] as const;

export type Interpretation =
  | { kind: 'act'; account: string; region: string; resourceIds: string[]; eventName: string; timeMs: number }
  | { kind: 'ignore'; reason: IgnoreReason }
  | { kind: 'invalid'; problems: string[] };

export interface InterpretOptions {
  /**
   * The access key IDs tagwarden's replicas sign with (src/events/identity.ts): an event whose
   * `userIdentity.accessKeyId` is one of them is about our own call. The user agent is never trusted for this.
   */
  ownAccessKeys: ReadonlySet<string>;
  /** Identities whose events are ours too: an access key ID, principal ID, user name, or ARN (prefix). */
  ignoreIdentities: readonly string[];
  /** When non-empty, events of other accounts are ignored. */
  accountIds: readonly string[];
  /** The account events without one are attributed to. */
  defaultAccount: string;
  /** Clock for events without a time. */
  nowMs: number;
}

const MAX_IDS = 50;
const MAX_PARAM_JSON = 65_536;
const REGION = /^[a-z]{2,}(-[a-z0-9]+){1,4}$/;
const PEER_TYPE = 'ACS::VPC::PeerConnection';
const SERVICES = new Set(['vpcpeer', 'vpc']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function own(o: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;
}

function requestParameters(data: Record<string, unknown>): Record<string, unknown> | undefined {
  const params = own(data, 'requestParameters');
  if (isObject(params)) return params;
  const json = own(data, 'requestParameterJson') ?? params;
  if (typeof json === 'string' && json.length <= MAX_PARAM_JSON) {
    try {
      const parsed = JSON.parse(json) as unknown;
      if (isObject(parsed)) return parsed;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Every string a list-valued field may hold: an array, a JSON array string, or a separated string. */
function listOf(value: unknown, out: string[]): void {
  if (Array.isArray(value)) {
    for (const v of value.slice(0, MAX_IDS + 1)) if (typeof v === 'string') out.push(v);
    return;
  }
  if (typeof value !== 'string' || value === '') return;
  const trimmed = value.trim();
  if (trimmed.startsWith('[') && trimmed.length <= MAX_PARAM_JSON) {
    try {
      listOf(JSON.parse(trimmed) as unknown, out);
      return;
    } catch {
      // not JSON: fall through to separators
    }
  }
  for (const part of trimmed.split(/[;,]/).slice(0, MAX_IDS + 1)) if (part.trim() !== '') out.push(part.trim());
}

function resourceIds(data: Record<string, unknown>, params: Record<string, unknown> | undefined, eventName: string): string[] {
  const found: string[] = [];
  if (params) {
    for (const key of Object.keys(params)) {
      if (/^ResourceId\.\d{1,3}$/.test(key)) listOf(params[key], found);
    }
    listOf(own(params, 'ResourceId'), found);
  }
  const referenced = own(data, 'referencedResources');
  if (isObject(referenced)) listOf(own(referenced, PEER_TYPE), found);
  const name = own(data, 'resourceName');
  if (found.length === 0) listOf(name, found);
  if (eventName === 'CreateVpcPeerConnection') {
    const response = own(data, 'responseElements');
    if (isObject(response)) listOf(own(response, 'InstanceId'), found);
  }
  return [...new Set(found)];
}

function hasTagParams(params: Record<string, unknown>): boolean {
  return Object.keys(params).some((k) => /^Tags?(\.\d+\.(Key|Value))?$/.test(k));
}

/** The access key ID the caller of an ActionTrail event signed with (`data.userIdentity.accessKeyId`), if any. */
export function callerAccessKeyId(event: CloudEvent): string | undefined {
  const data = event.data;
  if (!isObject(data)) return undefined;
  const identity = own(data, 'userIdentity');
  return isObject(identity) ? str(own(identity, 'accessKeyId')) : undefined;
}

/**
 * The account an event belongs to: EventBridge's `aliyunaccountid`, else `data.recipientAccountId`, else the
 * caller's `data.userIdentity.accountId`.
 */
export function eventAccountId(event: CloudEvent): string | undefined {
  if (event.aliyunaccountid !== undefined) return event.aliyunaccountid;
  const data = event.data;
  if (!isObject(data)) return undefined;
  const identity = own(data, 'userIdentity');
  return str(own(data, 'recipientAccountId')) ?? (isObject(identity) ? str(own(identity, 'accountId')) : undefined);
}

function isOwn(data: Record<string, unknown>, options: InterpretOptions): boolean {
  const identity = own(data, 'userIdentity');
  if (!isObject(identity)) return false;
  const key = str(own(identity, 'accessKeyId'));
  if (key !== undefined && options.ownAccessKeys.has(key)) return true;
  if (options.ignoreIdentities.length === 0) return false;
  const values = ['accessKeyId', 'principalId', 'userName', 'arn', 'sessionName'].map((k) => str(own(identity, k))).filter((v): v is string => v !== undefined);
  return options.ignoreIdentities.some((wanted) => values.some((v) => v === wanted || (wanted.startsWith('acs:') && v.startsWith(wanted))));
}

/** Decides what one CloudEvent means for tagwarden. Pure; `at` names the event in problems. */
export function interpretEvent(event: CloudEvent, at: string, options: InterpretOptions): Interpretation {
  const data = event.data;
  const eventType = isObject(data) ? str(own(data, 'eventType')) : undefined;
  const typed = /:(ApiCall|ConsoleOperation)$/.test(event.type) || eventType === 'ApiCall' || eventType === 'ConsoleOperation';
  if (!typed || !/actiontrail/i.test(`${event.type} ${event.source}`) && eventType === undefined) return { kind: 'ignore', reason: 'not_actiontrail' };
  if (!isObject(data)) return { kind: 'invalid', problems: [`${at}.data: an ActionTrail event needs its data object`] };
  const eventName = str(own(data, 'eventName'));
  if (eventName === undefined) return { kind: 'invalid', problems: [`${at}.data.eventName: required in an ActionTrail event`] };
  // Before the name: our own UnTagResources events are counted as own calls (the loop that never starts).
  if (isOwn(data, options)) return { kind: 'ignore', reason: 'own_call' };
  if (!(ACTED_EVENT_NAMES as readonly string[]).includes(eventName)) return { kind: 'ignore', reason: 'other_event' };
  const service = str(own(data, 'serviceName'))?.toLowerCase();
  const eventSource = str(own(data, 'eventSource'))?.toLowerCase();
  if (service !== undefined ? !SERVICES.has(service) : eventSource !== undefined && !/^(vpcpeer|vpc)[.-]/.test(eventSource)) {
    return { kind: 'ignore', reason: 'other_service' };
  }
  const params = requestParameters(data);
  if (eventName === 'TagResources') {
    const declared = str(params ? own(params, 'ResourceType') : undefined) ?? str(own(data, 'resourceType'));
    if (declared !== undefined && !/^(PeerConnection|ACS::VPC::PeerConnection)$/i.test(declared)) return { kind: 'ignore', reason: 'other_resource_type' };
  }
  const errorCode = str(own(data, 'errorCode'));
  if (errorCode !== undefined) return { kind: 'ignore', reason: 'failed_call' };
  const account = eventAccountId(event);
  if (options.accountIds.length > 0 && (account === undefined || !options.accountIds.includes(account))) return { kind: 'ignore', reason: 'other_account' };
  if (eventName === 'CreateVpcPeerConnection' && params !== undefined && !hasTagParams(params)) return { kind: 'ignore', reason: 'no_tags' };

  const problems: string[] = [];
  const regionField = str(own(data, 'acsRegion')) !== undefined ? 'data.acsRegion' : params && str(own(params, 'RegionId')) !== undefined ? 'data.requestParameters.RegionId' : 'aliyunregionid';
  const region = str(own(data, 'acsRegion')) ?? (params ? str(own(params, 'RegionId')) : undefined) ?? event.aliyunregionid;
  if (region === undefined) problems.push(`${at}.data.acsRegion: required to act on ${eventName} (or requestParameters.RegionId)`);
  else if (region.length > 64 || !REGION.test(region)) problems.push(`${at}.${regionField}: not a region ID such as cn-hangzhou`);
  const ids = resourceIds(data, params, eventName);
  if (ids.length > MAX_IDS) problems.push(`${at}.data.requestParameters.ResourceId: at most ${MAX_IDS} resource IDs`);
  ids.slice(0, MAX_IDS).forEach((id, i) => {
    if (!RESOURCE_ID.safeParse(id).success) problems.push(`${at}.data resource ID ${i + 1}: not a peering connection ID (letters, digits, - and _, at most 64)`);
  });
  if (problems.length > 0) return { kind: 'invalid', problems: problems.slice(0, 5) };
  if (ids.length === 0) return { kind: 'ignore', reason: 'no_resources' };
  const time = event.time ?? str(own(data, 'eventTime'));
  const parsed = time === undefined ? Number.NaN : Date.parse(time);
  return {
    kind: 'act',
    account: account ?? options.defaultAccount,
    region: region ?? '',
    resourceIds: ids,
    eventName,
    timeMs: Number.isFinite(parsed) ? parsed : options.nowMs,
  };
}
