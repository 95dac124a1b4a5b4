// The accounts file loader: valid files, every kind of error located at file:line:column, hostile values,
// and the published JSON Schema generated from the loader's own schema.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { accountsJsonSchema, parseAccountList } from '../../src/accounts/index.js';
import { formatFinding } from '../../src/policy/index.js';

const parse = (text: string) => parseAccountList({ file: 'accounts.yaml', text });
const messages = (text: string) => parse(text).findings.map(formatFinding);

const GOOD = `apiVersion: tagwarden/v1
kind: AccountList
accounts:
  - id: "1234567890123456"
    name: prod
    roleArn: acs:ram::1234567890123456:role/tagwarden
    externalId: ext-123
    tags: { env: prod, team: net }
  - id: "2234567890123456"
    name: dev
    roleArn: acs:ram::2234567890123456:role/tagwarden
directory:
  roleName: ResourceDirectoryAccountAccessRole
  refreshEvery: 30m
`;

describe('parseAccountList', () => {
  it('reads a valid file with defaults applied', () => {
    const { list, findings } = parse(GOOD);
    expect(findings).toEqual([]);
    expect(list).toEqual({
      accounts: [
        { id: '1234567890123456', name: 'prod', roleArn: 'acs:ram::1234567890123456:role/tagwarden', externalId: 'ext-123', tags: { env: 'prod', team: 'net' }, source: 'file' },
        { id: '2234567890123456', name: 'dev', roleArn: 'acs:ram::2234567890123456:role/tagwarden', tags: {}, source: 'file' },
      ],
      directory: { roleName: 'ResourceDirectoryAccountAccessRole', refreshEveryMs: 30 * 60_000 },
    });
  });

  it('refuses an unquoted account ID (a YAML number loses digits) at its line and column', () => {
    const text = GOOD.replace('id: "2234567890123456"', 'id: 22345678901234567');
    expect(parse(text).list).toBeUndefined();
    expect(messages(text)).toEqual([
      expect.stringMatching(/^accounts\.yaml:9:9: error: accounts\[1\]\.id: wrong type: got the number .* \(valid: an account ID of 1-20 digits, as a quoted string/),
    ]);
  });

  it('locates a role ARN of another account, duplicates, an unknown field with a suggestion, and bad values', () => {
    const text = `apiVersion: tagwarden/v1
kind: AccountList
accounts:
  - id: "1"
    name: a
    roleArn: acs:ram::2:role/x
  - id: "1"
    name: a
    roleArn: acs:ram::1:role/x
  - id: "3"
    name: c
    roleArn: arn:aws:iam::3:role/x
    externalid: nope
`;
    expect(messages(text)).toEqual([
      "accounts.yaml:12:14: error: accounts[2].roleArn: invalid value \"arn:aws:iam::3:role/x\" (valid: a RAM role ARN acs:ram::<account id>:role/<role name>, e.g. acs:ram::1234567890123456:role/tagwarden)",
      "accounts.yaml:13:5: error: accounts[2].externalid: unknown field 'externalid'; did you mean 'externalId'? (valid: known fields: id, name, roleArn, externalId, tags)",
    ]);
    const meaning = text.replace('    roleArn: arn:aws:iam::3:role/x\n    externalid: nope\n', '    roleArn: acs:ram::3:role/x\n');
    expect(messages(meaning)).toEqual([
      'accounts.yaml:6:14: error: accounts[0].roleArn: the role ARN names account 2, not 1 (valid: a role in account 1: acs:ram::1:role/<role name>)',
      'accounts.yaml:7:9: error: accounts[1].id: account 1 is already listed at accounts[0] (valid: each account once)',
      "accounts.yaml:8:11: error: accounts[1].name: name 'a' is already used at accounts[0] (valid: a name unique in the file)",
    ]);
  });

  it('reports YAML syntax errors, an empty file and a second document', () => {
    expect(messages('apiVersion: tagwarden/v1\nkind: [AccountList\n')[0]).toMatch(/^accounts\.yaml:\d+:\d+: error: .*\(valid: valid YAML\)$/);
    expect(messages('')).toEqual(['accounts.yaml: error: the accounts file is empty (valid: one AccountList document)']);
    expect(messages(`${GOOD}---\n${GOOD}`)).toEqual(['accounts.yaml:15:1: error: more than one YAML document (valid: one AccountList document per file)']);
  });

  it('accepts the longest values the API allows and refuses one more character', () => {
    const longest = `apiVersion: tagwarden/v1
kind: AccountList
accounts:
  - id: "${'9'.repeat(20)}"
    name: "${'n'.repeat(128)}"
    roleArn: acs:ram::${'9'.repeat(20)}:role/${'r'.repeat(64)}
    externalId: "${'e'.repeat(1224)}"
    tags: { "${'k'.repeat(128)}": "${'v'.repeat(128)}" }
`;
    expect(parse(longest).findings).toEqual([]);
    expect(parse(longest.replace(`"${'e'.repeat(1224)}"`, `"${'e'.repeat(1225)}"`)).findings.map((f) => f.path)).toEqual(['accounts[0].externalId']);
    expect(parse(longest.replace(`"${'9'.repeat(20)}"`, `"${'9'.repeat(21)}"`)).findings.map((f) => f.path)).toEqual(['accounts[0].id']);
    expect(parse(longest.replace(`"${'n'.repeat(128)}"`, '"bad\\u0007name"')).findings.map((f) => f.path)).toEqual(['accounts[0].name']);
  });

  it('stays fast on a backtracking-prone external ID', () => {
    const text = GOOD.replace('ext-123', `"${'a-'.repeat(5000)}!"`);
    expect(parse(text).findings.map((f) => f.path)).toEqual(['accounts[0].externalId']);
  });
});

describe('schemas/accountlist.schema.json', () => {
  it('equals the schema generated from the loader schema', () => {
    expect(JSON.parse(readFileSync('schemas/accountlist.schema.json', 'utf8'))).toEqual(accountsJsonSchema());
  });

  it('is draft 2020-12, closed to unknown fields, and describes every account field', () => {
    const schema = accountsJsonSchema() as { $schema: string; additionalProperties: boolean; properties: { accounts: { items: { properties: Record<string, { description?: string }>; required: string[] } } } };
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.additionalProperties).toBe(false);
    const item = schema.properties.accounts.items;
    expect(Object.keys(item.properties)).toEqual(['id', 'name', 'roleArn', 'externalId', 'tags']);
    expect(item.required).toEqual(['id', 'name', 'roleArn']);
    for (const field of Object.values(item.properties)) expect(field.description).toBeTruthy();
  });
});
