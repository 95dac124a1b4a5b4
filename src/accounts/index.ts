// Owns the accounts a deployment governs: the accounts file (YAML -> validated AccountList) and how policies choose accounts.
// Must not do I/O or call STS: the caller reads files; cloud/ assumes roles and lists the Resource Directory.
export { parseAccountList } from './load.js';
export { accountsJsonSchema, accountListSchema, ACCOUNT_ID_RE, ROLE_ARN_RE, type AccountListDocument } from './schema.js';
export type { Account, AccountList, AccountSelector, DirectorySettings } from './types.js';
export { accountsOfPolicy, policyGovernsAccount, restrictAccounts } from './select.js';
