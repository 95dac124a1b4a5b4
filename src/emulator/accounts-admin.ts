// Admin routes of the emulated Resource Directory under /_emulator/accounts: list, replace and patch the
// member accounts, and every per-account admin route at /_emulator/accounts/<id>/<route>.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { roleNameOf } from './accounts.js';
import { handleAdmin } from './admin.js';
import type { EmulatorCore } from './core.js';

/** The prefix of the account routes. */
export const ACCOUNTS_ADMIN_PREFIX = '/_emulator/accounts';

function reply(res: ServerResponse, status: number, value: unknown): void {
  const json = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json;charset=utf-8', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

function describe(core: EmulatorCore): unknown[] {
  return [...core.members.values()].map((m) => ({
    id: m.spec.id,
    name: m.spec.name ?? `member-${m.spec.id}`,
    roleName: roleNameOf(m.spec),
    externalId: m.spec.externalId ?? null,
    denied: m.spec.denied === true,
    status: m.spec.status ?? 'CreateSuccess',
    tags: m.spec.tags ?? {},
    stsCalls: { ...m.stsCalls },
    resources: m.core.store.size,
  }));
}

const PATCHABLE = new Set(['name', 'denied', 'externalId', 'status', 'tags']);

/** Handles a request under ACCOUNTS_ADMIN_PREFIX; never throws (errors are 400/404 JSON answers). */
export async function handleAccountsAdmin(
  core: EmulatorCore,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  rawQuery: string,
  body: Buffer,
): Promise<void> {
  const rest = path.slice(ACCOUNTS_ADMIN_PREFIX.length).replace(/\/+$/, '');
  const method = req.method ?? 'GET';
  const parse = (): Record<string, unknown> => {
    const value = JSON.parse(body.toString('utf8')) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('body must be a JSON object');
    return value as Record<string, unknown>;
  };
  try {
    if (rest === '') {
      if (method === 'GET') return reply(res, 200, { accounts: describe(core) });
      if (method === 'PUT') {
        const accounts = parse().accounts;
        if (!Array.isArray(accounts)) throw new Error('accounts: must be a list');
        core.setAccounts(accounts);
        return reply(res, 200, { accounts: describe(core) });
      }
      return reply(res, 404, { error: `no route ${method} ${path}` });
    }
    const m = /^\/([0-9]{1,20})(\/.*)?$/.exec(rest);
    const member = m === null ? undefined : core.members.get(m[1] ?? '');
    if (m === null || member === undefined) return reply(res, 404, { error: `no account at ${path}` });
    const sub = m[2];
    if (sub === undefined) {
      if (method !== 'PATCH') return reply(res, 404, { error: `no route ${method} ${path}` });
      const patch = parse();
      for (const key of Object.keys(patch)) if (!PATCHABLE.has(key)) throw new Error(`${key}: not patchable (${[...PATCHABLE].join(', ')})`);
      const next: Record<string, unknown> = { ...member.spec, ...patch };
      for (const [k, v] of Object.entries(next)) if (v === null) delete next[k];
      core.setAccounts([...core.members.values()].map((x) => (x === member ? next : x.spec)));
      return reply(res, 200, { accounts: describe(core) });
    }
    return await handleAdmin(member.core, req, res, `/_emulator${sub}`, rawQuery, body);
  } catch (err) {
    if (!res.headersSent) reply(res, 400, { error: err instanceof Error ? err.message : String(err) });
  }
}
