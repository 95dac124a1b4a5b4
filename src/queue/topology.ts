// Redis topologies from one URL: a single server, a Redis Cluster (seed nodes) or a Sentinel-monitored master.
// Pure: parses and describes, opens nothing.

/** A host and port of one Redis node or Sentinel. */
export interface RedisNodeAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Where Redis is and how it is laid out.
 * - `standalone`: `redis://[user:pass@]host:port[/db]` or `rediss://...` (TLS); also a proxy in front of a
 *   cluster (ApsaraDB for Redis / Tair proxy mode), which looks like one server.
 * - `cluster`: `redis+cluster://[user:pass@]host:port,host:port,...` (`rediss+cluster://` for TLS): seed nodes;
 *   the rest of the cluster is discovered from them.
 * - `sentinel`: `redis+sentinel://[user:pass@]host:port,host:port,.../masterName[/db][?sentinelPassword=...]`
 *   (`rediss+sentinel://` for TLS to the master): the Sentinels and the name of the master they monitor; the
 *   password is the master's, `sentinelPassword` the Sentinels' own (when they have one).
 */
export type RedisTopology =
  | { readonly kind: 'standalone'; readonly url: string }
  | {
      readonly kind: 'cluster';
      readonly nodes: readonly RedisNodeAddress[];
      readonly username?: string;
      readonly password?: string;
      readonly tls: boolean;
    }
  | {
      readonly kind: 'sentinel';
      readonly sentinels: readonly RedisNodeAddress[];
      readonly masterName: string;
      readonly username?: string;
      readonly password?: string;
      readonly sentinelPassword?: string;
      readonly db: number;
      readonly tls: boolean;
    };

export type RedisTopologyKind = RedisTopology['kind'];

/** Thrown for a Redis URL that cannot be used; the message never contains the URL's credentials. */
export class RedisUrlError extends Error {
  override readonly name = 'RedisUrlError';
}

const MULTI = /^(rediss?)\+(cluster|sentinel):\/\/(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?(\?[^#]*)?$/;
const MAX_NODES = 64;

/** Parses REDIS_URL into a topology; throws RedisUrlError naming what is wrong (never echoing a password). */
export function parseRedisTopology(url: string): RedisTopology {
  if (/^rediss?:\/\//.test(url)) return { kind: 'standalone', url };
  const m = MULTI.exec(url);
  if (!m) {
    throw new RedisUrlError('must start with redis://, rediss://, redis+cluster://, rediss+cluster://, redis+sentinel:// or rediss+sentinel://');
  }
  const [, scheme, kind, userinfo, hostList, path = '', query = ''] = m;
  const tls = scheme === 'rediss';
  const credentials = parseUserinfo(userinfo);
  const nodes = parseNodes(hostList ?? '');
  if (kind === 'cluster') {
    if (path !== '' && path !== '/') throw new RedisUrlError('a redis+cluster:// URL has no path (Redis Cluster has only database 0)');
    if (query !== '') throw new RedisUrlError('a redis+cluster:// URL takes no query parameters');
    return { kind: 'cluster', nodes, tls, ...credentials };
  }
  const parts = path.split('/').filter((p) => p !== '');
  const masterName = parts[0] === undefined ? '' : safeDecode(parts[0], 'master name');
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(masterName)) {
    throw new RedisUrlError('a redis+sentinel:// URL needs the master name as its path (letters, digits, _ . -), e.g. redis+sentinel://h1:26379,h2:26379/mymaster');
  }
  if (parts.length > 2) throw new RedisUrlError('a redis+sentinel:// URL path is /masterName or /masterName/db');
  const db = parts[1] === undefined ? 0 : Number(parts[1]);
  if (!Number.isInteger(db) || db < 0 || db > 15 || (parts[1] !== undefined && !/^\d+$/.test(parts[1]))) {
    throw new RedisUrlError('the database in a redis+sentinel:// URL must be 0-15');
  }
  let sentinelPassword: string | undefined;
  if (query !== '') {
    const params = new URLSearchParams(query.slice(1));
    for (const key of params.keys()) {
      if (key !== 'sentinelPassword') throw new RedisUrlError('the only query parameter of a redis+sentinel:// URL is sentinelPassword');
    }
    const value = params.get('sentinelPassword');
    if (value) sentinelPassword = value;
  }
  return { kind: 'sentinel', sentinels: nodes, masterName, db, tls, ...credentials, ...(sentinelPassword ? { sentinelPassword } : {}) };
}

function safeDecode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new RedisUrlError(`the ${what} in the Redis URL is not valid percent-encoding`);
  }
}

function parseUserinfo(userinfo: string | undefined): { username?: string; password?: string } {
  if (userinfo === undefined || userinfo === '') return {};
  const at = userinfo.indexOf(':');
  const username = safeDecode(at < 0 ? userinfo : userinfo.slice(0, at), 'user name');
  const password = at < 0 ? '' : safeDecode(userinfo.slice(at + 1), 'password');
  return { ...(username ? { username } : {}), ...(password ? { password } : {}) };
}

function parseNodes(list: string): RedisNodeAddress[] {
  const entries = list.split(',');
  if (list === '' || entries.length === 0) throw new RedisUrlError('the Redis URL names no host:port');
  if (entries.length > MAX_NODES) throw new RedisUrlError(`the Redis URL names more than ${MAX_NODES} nodes`);
  const seen = new Set<string>();
  return entries.map((entry, i) => {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(entry);
    const port = m ? Number(m[2]) : NaN;
    if (!m || !(port >= 1 && port <= 65_535)) {
      throw new RedisUrlError(`node ${i + 1} of the Redis URL must be host:port (port 1-65535)`);
    }
    const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
    if (seen.has(`${host}:${port}`)) throw new RedisUrlError(`node ${i + 1} of the Redis URL is listed twice`);
    seen.add(`${host}:${port}`);
    return { host, port };
  });
}

/** Every password a topology carries (for log redaction). */
export function topologySecrets(topology: RedisTopology): string[] {
  if (topology.kind === 'standalone') {
    try {
      const password = decodeURIComponent(new URL(topology.url).password);
      return password ? [password] : [];
    } catch {
      return [];
    }
  }
  return [topology.password, topology.kind === 'sentinel' ? topology.sentinelPassword : undefined].filter(
    (p): p is string => typeof p === 'string' && p.length > 0,
  );
}

/** A one-line description without credentials, e.g. `cluster 127.0.0.1:7000,127.0.0.1:7001`. */
export function describeTopology(topology: RedisTopology): string {
  const list = (nodes: readonly RedisNodeAddress[]) => nodes.map(formatAddress).join(',');
  switch (topology.kind) {
    case 'standalone':
      try {
        const u = new URL(topology.url);
        return `standalone ${u.hostname || '127.0.0.1'}:${u.port || '6379'}${topology.url.startsWith('rediss') ? ' tls' : ''}`;
      } catch {
        return 'standalone';
      }
    case 'cluster':
      return `cluster ${list(topology.nodes)}${topology.tls ? ' tls' : ''}`;
    case 'sentinel':
      return `sentinel ${topology.masterName} via ${list(topology.sentinels)}${topology.tls ? ' tls' : ''}`;
  }
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatAddress(node: { host: string; port: number }): string {
  return node.host.includes(':') ? `[${node.host}]:${node.port}` : `${node.host}:${node.port}`;
}

/** A URL with its credentials replaced by `***`, for logs and errors. */
export function redactRedisUrl(url: string): string {
  return url.replace(/^([a-z+]+:\/\/)[^@/?#]*@/, '$1***@').replace(/([?&]sentinelPassword=)[^&#]*/g, '$1***');
}
