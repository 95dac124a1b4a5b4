// Public data types of the accounts module.

/** One member account tagwarden governs. */
export interface Account {
  /** The account ID (ParentUid), digits. */
  readonly id: string;
  readonly name: string;
  /** The role assumed in the account (always set explicitly; never taken from ALIBABA_CLOUD_ROLE_ARN). */
  readonly roleArn: string;
  readonly externalId?: string;
  readonly tags: Readonly<Record<string, string>>;
  /** Where the account came from: the accounts file, or Resource Directory ListAccounts. */
  readonly source: 'file' | 'directory';
}

/** Resource Directory discovery settings of an accounts file. */
export interface DirectorySettings {
  readonly roleName: string;
  readonly externalId?: string;
  readonly refreshEveryMs: number;
}

/** A validated accounts file. */
export interface AccountList {
  readonly accounts: readonly Account[];
  readonly directory?: DirectorySettings;
}

/** How a policy chooses accounts: every account (default), listed IDs or names, or accounts whose tags match. */
export type AccountSelector =
  | { readonly all: true }
  | { readonly ids: readonly string[] }
  | { readonly tags: Readonly<Record<string, string>> };
