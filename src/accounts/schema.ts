// The one zod schema of an AccountList document (the accounts file): the loader validates with it and
// schemas/accountlist.schema.json is generated from it.
import { z } from 'zod';

/** An Alibaba Cloud account ID (ParentUid / UID): digits only, quoted in YAML. */
export const ACCOUNT_ID_RE = /^[0-9]{1,20}$/;
export const ACCOUNT_ID_RULE = 'an account ID of 1-20 digits, as a quoted string, e.g. "1234567890123456"';
/** `acs:ram::<account id>:role/<role name>`. */
export const ROLE_ARN_RE = /^acs:ram::([0-9]{1,20}):role\/([A-Za-z0-9._-]{1,64})$/;
export const ROLE_ARN_RULE = 'a RAM role ARN acs:ram::<account id>:role/<role name>, e.g. acs:ram::1234567890123456:role/tagwarden';
export const ROLE_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
const ROLE_NAME_RULE = 'a RAM role name of 1-64 letters, digits, . _ -';
/** STS AssumeRole ExternalId: 2-1224 characters of letters, digits and `+=,.@:/-_`. */
export const EXTERNAL_ID_RE = /^[A-Za-z0-9+=,.@:/_-]{2,1224}$/;
const EXTERNAL_ID_RULE = 'an ExternalId of 2-1224 letters, digits and + = , . @ : / - _';
const NAME_RULE = 'a name of 1-128 characters (no control characters)';
const EVERY_RULE = 'an interval such as 10m, 1h or 1d (at least 1m)';
/** `directory.refreshEvery`. */
export const REFRESH_RE = /^[1-9][0-9]{0,6}[mhd]$/;

const err = (expected: string) => ({ error: expected });

function mapping<T extends z.ZodRawShape>(shape: T, what: string) {
  const fields = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? `known fields: ${fields}` : `${what} (a mapping with fields ${fields})`),
  });
}

const accountId = () => z.string(err(ACCOUNT_ID_RULE)).regex(ACCOUNT_ID_RE, err(ACCOUNT_ID_RULE));
const externalId = () => z.string(err(EXTERNAL_ID_RULE)).regex(EXTERNAL_ID_RE, err(EXTERNAL_ID_RULE));
const tags = () =>
  z.record(
    z.string(err('a tag key of 1-128 characters')).min(1, err('a tag key of 1-128 characters')).max(128, err('a tag key of 1-128 characters')),
    z.string(err('a string tag value of at most 128 characters; quote values such as "true" or "2"')).max(128, err('at most 128 characters')),
    err('a mapping of tag key to value'),
  );

const account = mapping({
  id: accountId().describe('The member account ID (ParentUid). Quote it: a bare number loses digits.'),
  name: z.string(err(NAME_RULE)).min(1, err(NAME_RULE)).max(128, err(NAME_RULE)).regex(/^[^\p{Cc}]+$/u, err(NAME_RULE)).describe('A readable name, shown beside the ID in logs, plans and /v1/accounts.'),
  roleArn: z.string(err(ROLE_ARN_RULE)).regex(ROLE_ARN_RE, err(ROLE_ARN_RULE)).describe('The RAM role tagwarden assumes in this account; its account part must equal id.'),
  externalId: externalId().optional().describe('ExternalId sent with AssumeRole when the role\'s trust policy requires one (sts:ExternalId condition).'),
  tags: tags().default({}).describe('Account tags; policies choose accounts by them (spec.accounts.tags).'),
}, 'an account with id, name, roleArn and optional externalId and tags');

const directory = mapping({
  roleName: z.string(err(ROLE_NAME_RULE)).regex(ROLE_NAME_RE, err(ROLE_NAME_RULE)).default('ResourceDirectoryAccountAccessRole')
    .describe('The role assumed in every listed member: acs:ram::<member id>:role/<roleName>.'),
  externalId: externalId().optional().describe('ExternalId sent when assuming roles in listed members.'),
  refreshEvery: z.string(err(EVERY_RULE)).regex(REFRESH_RE, err(EVERY_RULE)).default('1h').describe('How often the member list is read again (ListAccounts).'),
}, 'Resource Directory discovery with roleName, externalId and refreshEvery');

/** The AccountList document schema (one YAML document). */
export const accountListSchema = mapping({
  apiVersion: z.literal('tagwarden/v1', err('tagwarden/v1')).describe('Always tagwarden/v1.'),
  kind: z.literal('AccountList', err('AccountList')).describe('Always AccountList.'),
  accounts: z.array(account, err('a list of accounts')).default([]).describe('Member accounts, each reached by assuming its roleArn.'),
  directory: directory.optional().describe('Also govern every member the Resource Directory lists (needs the management or a delegated administrator account). A listed account also in accounts uses the entry in accounts.'),
}, 'an AccountList document').meta({
  title: 'tagwarden AccountList',
  description: 'The member accounts one tagwarden deployment governs. Reference: README.md, section Many accounts.',
});

export type AccountListDocument = z.output<typeof accountListSchema>;

/** The JSON Schema (draft 2020-12) of an AccountList document, generated from {@link accountListSchema}. */
export function accountsJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(accountListSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
}
