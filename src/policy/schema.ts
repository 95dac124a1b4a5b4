// The one zod schema of a TagPolicy document: the loader validates with it and the published JSON Schema is generated from it.
import { z } from 'zod';

/** Policy names: what `metadata.name` accepts (also used in BullMQ job ids, so no ':' and no '.'). */
export const POLICY_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const POLICY_NAME_RULE =
  "1-63 lowercase letters, digits and '-', starting and ending with a letter or digit";

/** `schedule.every`: a positive integer and one unit, s m h or d. */
export const EVERY_RE = /^[1-9][0-9]{0,6}[smhd]$/;

/** Connection statuses ListVpcPeerConnections reports (reference §1.5). */
export const CONNECTION_STATUSES = [
  'Creating', 'Accepting', 'Updating', 'Rejected', 'Expired', 'Activated', 'Deleting', 'Deleted',
] as const;

export const PATTERN_RULE =
  "a glob ('*' any run of characters, '?' one character) or a regex between slashes, e.g. /^tmp-\\d+$/ or /^tmp/i";
const TAG_KEY_SHAPE_RULE = 'a tag key of 1-128 characters';
const TAG_MAP_RULE = `a mapping of tag key to value pattern (${PATTERN_RULE}; "*" means any value, also empty)`;
const DATE_RULE = 'a date YYYY-MM-DD (exempt through the end of that day, UTC) or an RFC 3339 time with offset, e.g. 2026-12-31T18:00:00+08:00';

const err = (expected: string) => ({ error: expected });

/** A strict mapping: an unknown field is an error that lists the known ones. */
function mapping<T extends z.ZodRawShape>(shape: T, what: string) {
  const fields = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? `known fields: ${fields}` : `${what} (a mapping with fields ${fields})`),
  });
}

const stringList = (what: string, item: z.ZodString) =>
  z.array(item, err(`a list of ${what}`)).min(1, err(`a list of at least one ${what}; omit the field instead of an empty list`));

const pattern = () => z.string(err(PATTERN_RULE)).min(1, err(PATTERN_RULE)).max(512, err(`${PATTERN_RULE}, at most 512 characters`));
const tagKey = (rule = TAG_KEY_SHAPE_RULE) => z.string(err(rule)).min(1, err(rule)).max(128, err(rule));
const tagMatch = () =>
  z.record(tagKey(), z.string(err(`a string value pattern; quote values such as "true" or "2" (${PATTERN_RULE})`)).max(512, err('at most 512 characters')), err(TAG_MAP_RULE));
const resourceIds = () =>
  stringList('connection IDs such as pcc-123', z.string(err('a connection ID such as pcc-123')).regex(/^\S{1,128}$/, err('a connection ID such as pcc-123 (no spaces)')));

const selectorAttributes = mapping({
  vpcIds: stringList('VPC IDs', z.string(err('a VPC ID such as vpc-123')).regex(/^\S{1,128}$/, err('a VPC ID such as vpc-123 (no spaces)')))
    .optional()
    .describe('Only connections whose requester or accepter VPC is one of these.'),
  names: stringList('name patterns', pattern()).optional().describe(`Only connections whose name matches one of these (${PATTERN_RULE}).`),
  statuses: z.array(z.enum(CONNECTION_STATUSES, err(`one of ${CONNECTION_STATUSES.join(', ')}`)), err('a list of statuses'))
    .min(1, err('at least one status'))
    .optional()
    .describe('Only connections in one of these statuses.'),
  resourceGroupIds: stringList('resource group IDs', z.string(err('a resource group ID such as rg-123')).regex(/^\S{1,128}$/, err('a resource group ID (no spaces)')))
    .optional()
    .describe('Only connections in one of these resource groups.'),
}, 'connection attributes to select on');

const selector = mapping({
  resourceIds: resourceIds().optional().describe('Only these connections.'),
  tags: tagMatch().optional().describe('Only connections carrying all of these tags; values are patterns, "*" means present with any value.'),
  attributes: selectorAttributes.optional().describe('Only connections whose ListVpcPeerConnections attributes match; all given fields must match.'),
}, 'which resources are in scope');

const ACCOUNT_ID_RULE = 'an account ID of 1-20 digits, quoted, e.g. "1234567890123456"';
const accountChoice = mapping({
  ids: stringList('account IDs', z.string(err(ACCOUNT_ID_RULE)).regex(/^[0-9]{1,20}$/, err(ACCOUNT_ID_RULE))).optional()
    .describe('Only these account IDs.'),
  names: stringList('account names', z.string(err('an account name')).min(1, err('an account name')).max(128, err('at most 128 characters'))).optional()
    .describe('Only the accounts with these names (the accounts file\'s name, or the directory\'s DisplayName).'),
  tags: tagMatch().optional().describe('Only accounts carrying all of these account tags; values are patterns, "*" means present with any value.'),
}, 'which accounts the policy governs: ids, names and/or tags');

const remove = mapping({
  keys: stringList('exact tag keys', tagKey()).optional().describe('Exact tag keys to remove.'),
  keyPatterns: stringList('key patterns', pattern()).optional().describe(`Tag keys matching any of these are removed (${PATTERN_RULE}).`),
  where: tagMatch().optional().describe('Per key value condition: a key listed here is removed only where its value matches the pattern. Every key here must also be selected by keys or keyPatterns.'),
  all: z.boolean(err('true or false')).default(false).describe('true: detach every tag (UnTagResources All=true); falls back to an explicit key list when the resource carries a kept or system tag.'),
}, 'what to remove: keys, keyPatterns and where, or all: true');

const exemption = mapping({
  resourceIds: resourceIds().optional().describe('Exempt these connections.'),
  tags: tagMatch().optional().describe('Exempt connections carrying all of these tags (values are patterns).'),
  until: z.string(err(DATE_RULE))
    .regex(/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/, err(DATE_RULE))
    .describe('The exemption holds while the current time is before this; a date means through the end of that day (UTC).'),
  reason: z.string(err('a non-empty reason (why the resource is exempt)')).min(1, err('a non-empty reason')).max(1024, err('at most 1024 characters')).describe('Why these resources are exempt; shown in plans and audit logs.'),
}, 'an exemption with resourceIds and/or tags, until and reason');

const schedule = mapping({
  every: z.string(err('an interval such as 90s, 10m, 1h or 1d (minimum 1m, maximum 31d)'))
    .regex(EVERY_RE, err('an interval such as 90s, 10m, 1h or 1d (minimum 1m, maximum 31d)'))
    .optional()
    .describe('Run at this interval: a positive integer followed by s, m, h or d; at least 1m, at most 31d.'),
  cron: z.string(err('a 5-field cron expression, e.g. "*/10 * * * *"'))
    .min(1, err('a 5-field cron expression, e.g. "*/10 * * * *"'))
    .optional()
    .describe('Run on this 5-field cron expression (minute hour day-of-month month day-of-week), UTC.'),
}, 'a schedule: { every: 10m } or { cron: "*/10 * * * *" }')
  .meta({ oneOf: [{ required: ['every'] }, { required: ['cron'] }] });

const limits = mapping({
  maxRemovalsPerRun: z.number(err('an integer from 1 to 1000000'))
    .int(err('an integer from 1 to 1000000'))
    .min(1, err('an integer from 1 to 1000000'))
    .max(1_000_000, err('an integer from 1 to 1000000'))
    .default(1000)
    .describe('Blast-radius cap: a run that would remove more (resource, key) pairs than this stops before any call.'),
}, 'run limits');

/** The TagPolicy document schema (one YAML document). */
export const policySchema = mapping({
  apiVersion: z.literal('tagwarden/v1', err('tagwarden/v1')).describe('Always tagwarden/v1.'),
  kind: z.literal('TagPolicy', err('TagPolicy')).describe('Always TagPolicy.'),
  metadata: mapping({
    name: z.string(err(POLICY_NAME_RULE)).regex(POLICY_NAME_RE, err(POLICY_NAME_RULE)).describe(`Unique across all policy files: ${POLICY_NAME_RULE}.`),
    description: z.string(err('a string of at most 1024 characters')).max(1024, err('at most 1024 characters')).optional().describe('Free text for humans.'),
  }, 'metadata with name and optional description').describe('Identifies the policy.'),
  spec: mapping({
    resourceType: z.literal('PeerConnection', err('PeerConnection')).default('PeerConnection').describe('The resource type; only PeerConnection (VPC peering connections).'),
    regions: z.array(z.string(err('a region ID such as cn-hangzhou')).regex(/^[a-z]{2}-[a-z0-9-]{1,40}$/, err('a region ID such as cn-hangzhou')), err('a list of region IDs'))
      .min(1, err('at least one region ID'))
      .describe('Region IDs this policy runs in.'),
    selector: selector.optional().describe('Optional: which resources are in scope; all given conditions must hold. Absent: every connection in the regions.'),
    accounts: accountChoice.optional().describe('Optional, with an accounts file: which member accounts the policy governs; all given conditions must hold. Absent: every account.'),
    remove: remove.describe('What to remove. keep and system tags always win.'),
    keep: z.array(pattern(), err(`a list of keys or patterns (${PATTERN_RULE})`)).default([]).describe('Keys or patterns never removed by this policy; keep beats remove.'),
    exemptions: z.array(exemption, err('a list of exemptions')).default([]).describe('Resources left alone until a date, with a reason.'),
    schedule: schedule.default({ every: '10m' }).describe('When the policy runs; default every 10m.'),
    mode: z.enum(['enforce', 'dryRun'], err('enforce or dryRun')).default('enforce').describe('enforce removes tags; dryRun plans, logs and counts but never calls UnTagResources.'),
    limits: limits.default({ maxRemovalsPerRun: 1000 }).describe('Safety limits for one run.'),
  }, 'the policy spec').describe('What the policy does: where, to which resources, what it removes, when.'),
}, 'a TagPolicy document').meta({
  title: 'tagwarden TagPolicy',
  description: 'A tag policy enforced by tagwarden on Alibaba Cloud VPC peering connections. Reference: policies/README.md',
});

/** A validated policy document with defaults applied: plain JSON, re-compilable by compilePolicyDocument. */
export type PolicyDocument = z.output<typeof policySchema>;
/** A policy document as written (defaults not applied). */
export type PolicyDocumentInput = z.input<typeof policySchema>;

/** The JSON Schema (draft 2020-12) of a TagPolicy document, generated from {@link policySchema}. */
export function policyJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(policySchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
}
