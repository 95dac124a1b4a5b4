// Member accounts of an emulated Resource Directory: STS AssumeRole 2015-04-01 (temporary keys bound to
// one member) and Resource Manager ListAccounts 2020-03-31. Must not speak HTTP: server.ts routes here.
import { randomBytes } from 'node:crypto';
import { ApiFailure, invalid, missing } from './api-errors.js';
import type { AuthResult } from './auth.js';
import type { EmulatorCore } from './core.js';
import { isoSeconds } from './store.js';
import type { EmulatorAccount } from './types.js';

/** The STS API version `@alicloud/credentials` signs AssumeRole with. */
export const STS_VERSION = '2015-04-01';
/** The Resource Manager API version of ListAccounts. */
export const RESOURCE_MANAGER_VERSION = '2020-03-31';
/** The role name of a member account when the account spec gives none. */
export const DEFAULT_MEMBER_ROLE = 'ResourceDirectoryAccountAccessRole';
/** STS session limits (reference: AssumeRole DurationSeconds 900 to the role's maximum, default 3600). */
export const STS_MIN_DURATION_S = 900;
export const STS_MAX_DURATION_S = 3600;

const ACCOUNT_ID_RE = /^[0-9]{1,20}$/;
const ROLE_ARN_RE = /^acs:ram::([0-9]{1,20}):role\/([A-Za-z0-9._-]{1,64})$/;
const SESSION_NAME_RE = /^[A-Za-z0-9._@-]{2,64}$/;

/** The non-VpcPeer actions this emulator serves, by (Action, Version). */
export type ForeignApi = 'AssumeRole' | 'ListAccounts';

export function foreignApi(action: string, version: string): ForeignApi | undefined {
  if (action === 'AssumeRole' && version === STS_VERSION) return 'AssumeRole';
  if (action === 'ListAccounts' && version === RESOURCE_MANAGER_VERSION) return 'ListAccounts';
  return undefined;
}

/** One member account: its spec, its own estate/quotas/faults/ClientTokens (a whole EmulatorCore) and STS counters. */
export interface MemberAccount {
  spec: EmulatorAccount;
  readonly core: EmulatorCore;
  /** AssumeRole calls naming this account's role, by outcome code (`OK`, `NoPermission`, ...). */
  readonly stsCalls: Record<string, number>;
}

/** Validates an account spec (throws Error naming the field). */
export function checkAccount(a: unknown, where: string): EmulatorAccount {
  if (typeof a !== 'object' || a === null || Array.isArray(a)) throw new Error(`${where}: must be an object`);
  const spec = a as EmulatorAccount;
  if (typeof spec.id !== 'string' || !ACCOUNT_ID_RE.test(spec.id)) throw new Error(`${where}.id: 1-20 digits`);
  if (spec.roleName !== undefined && (typeof spec.roleName !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(spec.roleName))) {
    throw new Error(`${where}.roleName: 1-64 letters, digits, . _ -`);
  }
  if (spec.externalId !== undefined && (typeof spec.externalId !== 'string' || spec.externalId.length === 0)) {
    throw new Error(`${where}.externalId: a non-empty string`);
  }
  for (const [k, v] of Object.entries(spec.tags ?? {})) {
    if (typeof v !== 'string') throw new Error(`${where}.tags.${k}: a string`);
  }
  return spec;
}

export function roleNameOf(spec: EmulatorAccount): string {
  return spec.roleName ?? DEFAULT_MEMBER_ROLE;
}

const token = (bytes: number): string => randomBytes(bytes).toString('base64url');

function assumeRole(core: EmulatorCore, params: Readonly<Record<string, string>>): { account: string; body: Record<string, unknown> } {
  const roleArn = params['RoleArn'];
  if (roleArn === undefined || roleArn === '') throw missing('RoleArn');
  const m = ROLE_ARN_RE.exec(roleArn);
  if (m === null) throw new ApiFailure('InvalidParameter.RoleArn', 'The parameter RoleArn is invalid: acs:ram::<account id>:role/<role name>.');
  const accountId = m[1] ?? '';
  const roleName = m[2] ?? '';
  const member = core.members.get(accountId);
  const count = (code: string): void => {
    if (member !== undefined) member.stsCalls[code] = (member.stsCalls[code] ?? 0) + 1;
  };
  try {
    const session = params['RoleSessionName'];
    if (session === undefined || session === '') throw missing('RoleSessionName');
    if (!SESSION_NAME_RE.test(session)) {
      throw new ApiFailure('InvalidParameter.RoleSessionName', 'The parameter RoleSessionName must be 2-64 characters of letters, digits, . @ - _.');
    }
    const durationText = params['DurationSeconds'] ?? String(STS_MAX_DURATION_S);
    const duration = /^[0-9]{1,9}$/.test(durationText) ? Number(durationText) : Number.NaN;
    if (!(duration >= STS_MIN_DURATION_S && duration <= STS_MAX_DURATION_S)) {
      throw new ApiFailure('InvalidParameter.DurationSeconds', `The DurationSeconds must be between ${STS_MIN_DURATION_S} and ${STS_MAX_DURATION_S}.`);
    }
    if (member === undefined || roleNameOf(member.spec).toLowerCase() !== roleName.toLowerCase()) {
      throw new ApiFailure('EntityNotExist.Role', `The role not exists: ${roleArn}.`);
    }
    // The trust policy: a denied role, or an ExternalId condition the request does not meet.
    const externalOk = member.spec.externalId === undefined || params['ExternalId'] === member.spec.externalId;
    if (member.spec.denied === true || !externalOk) {
      throw new ApiFailure('NoPermission', 'You are not authorized to do this action. You should be authorized by RAM.');
    }
    const lifetimeS = core.stsSessionSeconds ?? duration;
    const expiresS = Math.floor(core.now() / 1000) + lifetimeS;
    const accessKeyId = `STS.${token(18)}`;
    const secret = token(24);
    const securityToken = `CAIS${token(96)}`;
    core.auth.addTemporary(accessKeyId, { secret, securityToken, account: accountId, expiresAt: expiresS * 1000 });
    count('OK');
    return {
      account: accountId,
      body: {
        AssumedRoleUser: {
          Arn: `acs:ram::${accountId}:role/${roleName.toLowerCase()}/${session}`,
          AssumedRoleId: `3${randomBytes(8).readBigUInt64BE().toString().padStart(17, '0').slice(0, 17)}:${session}`,
        },
        Credentials: { AccessKeyId: accessKeyId, AccessKeySecret: secret, SecurityToken: securityToken, Expiration: isoSeconds(expiresS) },
      },
    };
  } catch (err) {
    if (err instanceof ApiFailure) count(err.code);
    throw err;
  }
}

function intParam(params: Readonly<Record<string, string>>, name: string, min: number, max: number, fallback: number): number {
  const text = params[name];
  if (text === undefined || text === '') return fallback;
  const n = /^[0-9]{1,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= min && n <= max)) throw invalid(name, `an integer from ${min} to ${max}`);
  return n;
}

function listAccounts(core: EmulatorCore, auth: AuthResult, params: Readonly<Record<string, string>>): { body: Record<string, unknown> } {
  // Only the management account (the emulator's own keys) may list the directory; a member's STS key may not.
  if (auth.account !== undefined) {
    throw new ApiFailure('NoPermission', 'You are not authorized to do this action. You should be authorized by RAM.');
  }
  const pageNumber = intParam(params, 'PageNumber', 1, 1_000_000, 1);
  const pageSize = intParam(params, 'PageSize', 1, 100, 10);
  const includeTags = params['IncludeTags'] === 'true';
  const all = [...core.members.values()].sort((a, b) => (a.spec.id < b.spec.id ? -1 : a.spec.id > b.spec.id ? 1 : 0));
  const page = all.slice((pageNumber - 1) * pageSize, pageNumber * pageSize);
  return {
    body: {
      TotalCount: all.length,
      PageNumber: pageNumber,
      PageSize: pageSize,
      Accounts: {
        Account: page.map(({ spec }) => ({
          AccountId: spec.id,
          DisplayName: spec.name ?? `member-${spec.id}`,
          AccountName: `${spec.name ?? spec.id}@emulator.onaliyun.com`,
          Type: 'ResourceAccount',
          Status: spec.status ?? 'CreateSuccess',
          FolderId: 'fd-emulator',
          ResourceDirectoryId: 'rd-emulator',
          JoinMethod: 'created',
          JoinTime: '2024-01-01T00:00:00.000Z',
          ModifyTime: '2024-01-01T00:00:00.000Z',
          ...(includeTags ? { Tags: { Tag: Object.entries(spec.tags ?? {}).map(([Key, Value]) => ({ Key, Value })) } } : {}),
        })),
      },
    },
  };
}

/** Runs an STS or Resource Manager action for a verified caller; throws ApiFailure. */
export function runForeign(
  core: EmulatorCore,
  api: ForeignApi,
  auth: AuthResult,
  params: Readonly<Record<string, string>>,
): { account?: string; body: Record<string, unknown> } {
  return api === 'AssumeRole' ? assumeRole(core, params) : listAccounts(core, auth, params);
}
