// Which accounts a policy governs (spec.accounts), and the --account restriction of a run. Pure.
import { mustCompilePattern } from '../policy/patterns.js';
import type { CompiledPolicy } from '../policy/index.js';
import type { Account } from './types.js';

/** True when the policy governs the account: every given condition of spec.accounts holds (absent: every account). */
export function policyGovernsAccount(policy: CompiledPolicy, account: Account): boolean {
  const choice = policy.document.spec.accounts;
  if (choice === undefined) return true;
  if (choice.ids !== undefined && !choice.ids.includes(account.id)) return false;
  if (choice.names !== undefined && !choice.names.includes(account.name)) return false;
  for (const [key, source] of Object.entries(choice.tags ?? {})) {
    const value = account.tags[key];
    if (value === undefined || !mustCompilePattern(source).test(value)) return false;
  }
  return true;
}

/** The accounts a policy governs, in the given order. */
export function accountsOfPolicy(policy: CompiledPolicy, accounts: readonly Account[]): Account[] {
  return accounts.filter((a) => policyGovernsAccount(policy, a));
}

/**
 * Restricts accounts to those named by `--account` (IDs or names, comma-separated or repeated).
 * Returns the accounts and the requested names that match nothing (an error for the caller to report).
 */
export function restrictAccounts(accounts: readonly Account[], wanted: readonly string[] | undefined): { accounts: Account[]; unknown: string[] } {
  if (wanted === undefined || wanted.length === 0) return { accounts: [...accounts], unknown: [] };
  const set = new Set(wanted);
  const unknown = wanted.filter((w) => !accounts.some((a) => a.id === w || a.name === w));
  return { accounts: accounts.filter((a) => set.has(a.id) || set.has(a.name)), unknown };
}
