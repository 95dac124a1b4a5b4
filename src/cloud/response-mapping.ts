// Maps VpcPeer JSON responses (reference §1.4-1.6) to the domain types; tolerant of absent fields.
import type { Resource, ResourceAttributes } from '../model.js';
import type { TagRow } from './types.js';

type Bag = Record<string, unknown>;

export const asBag = (v: unknown): Bag | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Bag) : undefined;

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * A JSON list may arrive as a plain array or wrapped the XML way (`{ "TagResource": [...] }`).
 */
export function listOf(v: unknown, wrapper?: string): readonly unknown[] {
  if (Array.isArray(v)) return v;
  const bag = asBag(v);
  if (bag && wrapper !== undefined && Array.isArray(bag[wrapper])) return bag[wrapper] as unknown[];
  return [];
}

function tagsOf(v: unknown): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const entry of listOf(v, 'Tag')) {
    const bag = asBag(entry);
    const key = typeof bag?.['Key'] === 'string' ? bag['Key'] : undefined;
    if (key === undefined) continue;
    const value = bag?.['Value'];
    tags[key] = typeof value === 'string' ? value : value === null || value === undefined ? '' : String(value);
  }
  return tags;
}

/** One `VpcPeerConnects[]` item, or a GetVpcPeerConnectionAttribute body, as a Resource. */
export function toResource(item: unknown, fallbackRegion: string): Resource | undefined {
  const bag = asBag(item);
  const id = text(bag?.['InstanceId']);
  if (!bag || id === undefined) return undefined;
  const candidates: Record<keyof ResourceAttributes, string | undefined> = {
    name: text(bag['Name']),
    status: text(bag['Status']),
    vpcId: text(asBag(bag['Vpc'])?.['VpcId']),
    acceptingVpcId: text(asBag(bag['AcceptingVpc'])?.['VpcId']),
    acceptingRegionId: text(bag['AcceptingRegionId']),
    resourceGroupId: text(bag['ResourceGroupId']),
    description: text(bag['Description']),
    linkType: text(bag['LinkType']),
    managedService: text(bag['ManagedService']),
  };
  const attributes: { -readonly [K in keyof ResourceAttributes]: string } = {};
  for (const [key, value] of Object.entries(candidates) as [keyof ResourceAttributes, string | undefined][]) {
    if (value !== undefined) attributes[key] = value;
  }
  return { id, region: text(bag['RegionId']) ?? fallbackRegion, tags: tagsOf(bag['Tags']), attributes };
}

/** One `TagResources[]` row. */
export function toTagRow(item: unknown): TagRow | undefined {
  const bag = asBag(item);
  const resourceId = text(bag?.['ResourceId']);
  const tagKey = typeof bag?.['TagKey'] === 'string' ? bag['TagKey'] : undefined;
  if (resourceId === undefined || tagKey === undefined) return undefined;
  const value = bag?.['TagValue'];
  return { resourceId, tagKey, tagValue: typeof value === 'string' ? value : '' };
}
