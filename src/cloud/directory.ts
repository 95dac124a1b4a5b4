// Resource Directory member listing: Resource Manager ListAccounts 2020-03-31 over the official SDK,
// signed with the deployment's own credentials (management or delegated administrator account).
// Must not decide which accounts are governed: it only reads the directory.
import { CloudError, classifyError } from './classify-error.js';
import { asBag, listOf } from './response-mapping.js';
import { createSdkCaller, flattenQuery } from './sdk.js';

export interface DirectoryClientOptions {
  /** With scheme: `https://resourcemanager.aliyuncs.com` (default) or the emulator's URL. */
  readonly endpoint: string;
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly signatureVersion: 'v3' | 'v2';
  readonly credentials?: { accessKeyId: string; accessKeySecret: string; securityToken?: string };
  readonly onSecrets?: (secrets: readonly string[]) => void;
}

/** One member as ListAccounts reports it. */
export interface DirectoryAccount {
  readonly id: string;
  readonly name: string;
  /** CreateSuccess, InviteSuccess, PromoteSuccess (working members) or a pending/failed state. */
  readonly status: string;
  readonly tags: Readonly<Record<string, string>>;
}

const VERSION = '2020-03-31';
const PAGE_SIZE = 100;
/** A bound on pages read (100 000 members): a directory that pages for ever is an error, not a hang. */
const MAX_PAGES = 1_000;

/** Reads every member of the directory (all pages, tags included). Throws CloudError. */
export async function listDirectoryAccounts(options: DirectoryClientOptions): Promise<DirectoryAccount[]> {
  const url = new URL(options.endpoint.includes('://') ? options.endpoint : `https://${options.endpoint}`);
  const secrets = new Set<string>();
  const send = createSdkCaller({
    host: url.host,
    protocol: url.protocol === 'http:' ? 'http' : 'https',
    connectTimeoutMs: options.connectTimeoutMs,
    readTimeoutMs: options.readTimeoutMs,
    signatureVersion: options.signatureVersion,
    apiVersion: VERSION,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    onSecrets: (values) => {
      for (const v of values) secrets.add(v);
      options.onSecrets?.(values);
    },
  });
  const out: DirectoryAccount[] = [];
  for (let page = 1; page <= MAX_PAGES; page++) {
    let body: Record<string, unknown>;
    try {
      const res = await send({ action: 'ListAccounts', query: flattenQuery({ PageNumber: page, PageSize: PAGE_SIZE, IncludeTags: true }) });
      body = asBag(res.body) ?? {};
    } catch (err) {
      throw new CloudError(classifyError(err, secrets));
    }
    const accounts = listOf(body['Accounts'], 'Account');
    for (const raw of accounts) {
      const a = asBag(raw) ?? {};
      const id = typeof a['AccountId'] === 'string' || typeof a['AccountId'] === 'number' ? String(a['AccountId']) : '';
      if (!/^[0-9]{1,20}$/.test(id)) continue; // not an account ID: skipped, never guessed
      const tags: Record<string, string> = {};
      for (const t of listOf(a['Tags'], 'Tag')) {
        const tag = asBag(t) ?? {};
        if (typeof tag['Key'] === 'string') tags[tag['Key']] = typeof tag['Value'] === 'string' ? tag['Value'] : '';
      }
      out.push({
        id,
        name: typeof a['DisplayName'] === 'string' && a['DisplayName'] !== '' ? a['DisplayName'] : id,
        status: typeof a['Status'] === 'string' ? a['Status'] : 'Unknown',
        tags,
      });
    }
    const total = typeof body['TotalCount'] === 'number' ? body['TotalCount'] : Number(body['TotalCount'] ?? 0);
    if (accounts.length < PAGE_SIZE || out.length >= total) return out;
  }
  throw new CloudError({ kind: 'transient', code: 'TooManyPages', message: `TooManyPages: ListAccounts returned more than ${MAX_PAGES} pages` });
}
