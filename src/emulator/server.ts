// The HTTP face of the emulator (node:http): parses RPC requests, runs the gateway checks in order
// (action/version, signature, quota, faults, ClientToken) and the action, records every call.
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { API_NAMES, type ApiName, quotaRegion } from '../model.js';
import { foreignApi, runForeign } from './accounts.js';
import { type PreparedCall, prepareAction } from './actions.js';
import { ACCOUNTS_ADMIN_PREFIX, handleAccountsAdmin } from './accounts-admin.js';
import { handleAdmin } from './admin.js';
import { ApiFailure, missing } from './api-errors.js';
import { type SignedRequest, V2_COMMON_PARAMS, header, signatureKind } from './auth.js';
import { EmulatorCore } from './core.js';
import type { CallRecord, EmulatorOptions, FaultKind, RunningEmulator } from './types.js';
import { WEBHOOK_PATH, WebhookDelivery, handleWebhookAdmin } from './webhook.js';

/** The API version this emulator serves. */
export const API_VERSION = '2022-01-01';
/** The HostId of every error body. */
export const HOST_ID = 'vpcpeer.aliyuncs.com';
/** Admin routes live under this path and are not signed. */
export const ADMIN_PREFIX = '/_emulator/';

const MAX_API_BODY = 1 << 20;
const MAX_ADMIN_BODY = 512 << 20;
const HTML_502 =
  '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n' +
  '<hr><center>Tengine</center>\r\n</body>\r\n</html>\r\n';

class BodyTooLarge extends Error {}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyTooLarge();
    chunks.push(chunk);
  }
  return chunks.length === 1 ? (chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(chunks);
}

/**
 * Splits `a=1&b=2` into decoded pairs. In a query `+` is a literal plus (the SDKs encode spaces as %20);
 * in a form body `+` is a space. Throws ApiFailure on malformed percent-encoding.
 */
export function decodePairs(text: string, plusIsSpace: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  if (text === '') return out;
  for (const part of text.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    try {
      const key = decodeURIComponent(plusIsSpace ? rawKey.replace(/\+/g, ' ') : rawKey);
      out[key] = decodeURIComponent(plusIsSpace ? rawValue.replace(/\+/g, ' ') : rawValue);
    } catch {
      throw new ApiFailure('InvalidParameter', 'The request contains malformed percent-encoding.');
    }
  }
  return out;
}

function sendJson(res: ServerResponse, status: number, json: string, requestId: string, extra: Readonly<Record<string, string>> = {}): void {
  res.writeHead(status, {
    ...extra,
    'content-type': 'application/json;charset=utf-8',
    'content-length': Buffer.byteLength(json),
    'x-acs-request-id': requestId,
  });
  res.end(json);
}

/** The JSON error body of reference §1.8. */
export function errorBody(requestId: string, code: string, message: string): string {
  return JSON.stringify({
    RequestId: requestId,
    HostId: HOST_ID,
    Code: code,
    Message: message,
    Recommend: `https://api.aliyun.com/troubleshoot?q=${encodeURIComponent(code)}&product=VpcPeer&requestId=${requestId}`,
  });
}

function businessParams(params: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) if (!V2_COMMON_PARAMS.has(k)) out[k] = v;
  return out;
}

/** Handles one API request end to end; never throws. */
async function handleApi(
  core: EmulatorCore,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  rawQuery: string,
  webhook?: WebhookDelivery,
): Promise<void> {
  const rec: CallRecord = {
    seq: core.log.nextSeq(),
    at: core.now(),
    action: '',
    region: '',
    params: {},
    clientToken: null,
    status: 0,
    code: '',
    applied: false,
    removed: 0,
    added: 0,
    replayed: false,
    fault: null,
    requestId: randomUUID().toUpperCase(),
    accessKeyId: null,
    signature: null,
  };
  let fault: FaultKind | null = null;
  const drop = (): void => {
    rec.status = 0;
    req.socket.destroy();
  };
  try {
    let body: Buffer;
    try {
      body = await readBody(req, MAX_API_BODY);
    } catch (err) {
      if (err instanceof BodyTooLarge) throw new ApiFailure('InvalidParameter', 'The request body is too large.');
      throw err;
    }
    const query = decodePairs(rawQuery, false);
    const contentType = header(req.headers, 'content-type') ?? '';
    const bodyParams = contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')
      ? decodePairs(body.toString('utf8'), true)
      : {};
    const sreq: SignedRequest = { method: req.method ?? 'GET', path, query, body, params: { ...query, ...bodyParams }, headers: req.headers };
    const kind = signatureKind(sreq);
    rec.signature = kind;
    rec.accessKeyId = core.auth.claimedKey(sreq);
    const action = (kind === 'v3' ? header(req.headers, 'x-acs-action') : (sreq.params['Action'] ?? header(req.headers, 'x-acs-action'))) ?? '';
    const version = (kind === 'v3' ? header(req.headers, 'x-acs-version') : (sreq.params['Version'] ?? header(req.headers, 'x-acs-version'))) ?? '';
    const params = businessParams(sreq.params);
    rec.action = action;
    rec.params = params;
    rec.region = params['RegionId'] ?? '';
    if (path !== '/' || (sreq.method !== 'GET' && sreq.method !== 'POST')) {
      throw new ApiFailure('InvalidAction.NotFound', 'Specified api is not found, please check your url and method.');
    }
    if (action === '') throw missing('Action');
    const foreign = foreignApi(action, version);
    if (foreign !== undefined) {
      // STS AssumeRole and Resource Directory ListAccounts: signed like VpcPeer, no quota or faults.
      const caller = core.auth.verify(sreq);
      rec.accessKeyId = caller.accessKeyId;
      if (caller.account !== undefined) rec.account = caller.account;
      const out = runForeign(core, foreign, caller, params);
      if (out.account !== undefined) rec.account = out.account;
      rec.applied = true;
      rec.code = 'OK';
      rec.status = 200;
      sendJson(res, 200, JSON.stringify({ RequestId: rec.requestId, ...out.body }), rec.requestId);
      return;
    }
    if (!(API_NAMES as readonly string[]).includes(action)) {
      throw new ApiFailure('InvalidAction.NotFound', `Specified api "${action}" is not found, please check your url and method.`);
    }
    if (version === '') throw missing('Version');
    if (version !== API_VERSION) throw new ApiFailure('InvalidVersion', `Specified version "${version}" is not valid; use ${API_VERSION}.`);
    const api = action as ApiName;

    const auth = core.auth.verify(sreq);
    rec.accessKeyId = auth.accessKeyId;
    if (auth.account !== undefined) rec.account = auth.account;
    // A member account's STS key acts on that account's estate, quotas, faults and ClientTokens only.
    const target = core.targetOf(auth);

    const throttled = (): ApiFailure => {
      const f = target.faults.get();
      const headers = f.retryAfterMs === undefined ? {} : { 'x-acs-retry-after': String(f.retryAfterMs) };
      return new ApiFailure('Throttling.User', 'Request was denied due to user flow control.', f.throttleStatus ?? 400, headers);
    };
    // A regionless API (GetVpcPeerConnectionAttribute) spends the account's one central bucket.
    if (!target.quotas.admit(quotaRegion(api, rec.region), api)) throw throttled();
    const draw = target.faults.draw(api, rec.region);
    fault = draw.fault;
    rec.fault = fault;
    if (draw.delayMs > 0) await sleep(draw.delayMs);
    switch (fault) {
      case 'serviceUnavailable':
        throw new ApiFailure('ServiceUnavailable', 'The request has failed due to a temporary failure of the server.');
      case 'internalError':
        throw new ApiFailure('InternalError', 'The request processing has failed due to some unknown error, exception or failure.');
      case 'throttle':
        throw throttled();
      case 'noPermission':
        throw new ApiFailure('Forbidden.NoPermission', 'You are not authorized to perform this operation (RAM).');
      case 'conflict':
        throw new ApiFailure('Conflict.Operation', 'Another operation is being performed on the VPC peering connection; try again later.');
      case 'invalidTagKey':
        throw new ApiFailure('InvalidTagKey', 'The tag keys are not valid.');
      case 'unsuccessful': {
        // HTTP 200, Success=false: the documented answer of a write that did not happen. Nothing is applied.
        rec.status = 200;
        rec.code = 'Fault.Unsuccessful';
        sendJson(res, 200, JSON.stringify({ RequestId: rec.requestId, Success: false }), rec.requestId);
        return;
      }
      case 'reset':
        rec.code = 'Fault.Reset';
        drop();
        return;
      case 'html502':
        rec.status = 502;
        rec.code = 'Fault.Html502';
        res.writeHead(502, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(HTML_502) });
        res.end(HTML_502);
        return;
      default:
        break;
    }

    const prepared: PreparedCall = prepareAction(api, params, target);
    rec.params = prepared.normalized;
    rec.clientToken = prepared.clientToken ?? null;
    const fingerprint = JSON.stringify(prepared.normalized);
    const tokenKey = prepared.clientToken === undefined ? undefined : `${api}\n${prepared.clientToken}`;
    const remembered = tokenKey === undefined ? undefined : target.tokens.get(tokenKey);
    if (remembered !== undefined) {
      if (remembered.fingerprint !== fingerprint) {
        throw new ApiFailure('IdempotentParameterMismatch', 'The ClientToken was used before with different parameters.');
      }
      rec.replayed = true;
      rec.code = 'OK';
      rec.requestId = (JSON.parse(remembered.json) as { RequestId: string }).RequestId;
      if (fault === 'applyThenDrop') return drop();
      rec.status = 200;
      sendJson(res, 200, remembered.json, rec.requestId);
      return;
    }
    const out = prepared.run();
    rec.applied = true;
    rec.removed = out.removed;
    rec.added = out.added;
    rec.code = 'OK';
    webhook?.publish({
      action: api,
      region: rec.region,
      requestId: rec.requestId,
      params,
      accessKeyId: rec.accessKeyId,
      userAgent: header(req.headers, 'user-agent') ?? '',
      sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
      at: rec.at,
    });
    const json = JSON.stringify({ RequestId: rec.requestId, ...out.body });
    if (tokenKey !== undefined) target.tokens.set(tokenKey, { fingerprint, json });
    if (fault === 'applyThenDrop') return drop();
    rec.status = 200;
    sendJson(res, 200, json, rec.requestId);
  } catch (err) {
    const failure = err instanceof ApiFailure ? err : new ApiFailure('InternalError', 'The emulator failed to process the request.');
    rec.status = failure.status;
    rec.code = failure.code;
    if (fault === 'applyThenDrop') return drop();
    if (!res.headersSent && !res.destroyed) {
      sendJson(res, failure.status, errorBody(rec.requestId, failure.code, failure.message), rec.requestId, failure.headers);
    }
  } finally {
    core.record(rec);
  }
}

/**
 * Starts a VpcPeer 2022-01-01 emulator on node:http. Resolves once it listens; `close()` stops it and
 * drops open connections.
 *
 * Checks run in gateway order: Action/Version, signature (V3 header or V2 parameters, 15 min clock skew,
 * nonce reuse), quota of (RegionId, action), injected fault, parameters, ClientToken, then the action.
 * Choices where the reference is silent or split (status codes: see EMULATOR_ERRORS):
 * - UnTagResources: an absent key is not an error; an empty key matches nothing; `All=true` removes every
 *   tag except system tags (`acs:*`), also when keys are listed; neither keys nor `All=true` is MissingParameter.
 * - System tags are listed by the List actions but can never be attached or removed through the API.
 * - Unknown IDs fail the whole call with InvalidInstanceIds.NotFound (also in ListTagResources); IDs of
 *   another region are unknown.
 * - ListTagResources with tag filters lists only the filtered keys of matching resources; with IDs alone,
 *   every tag. ListVpcPeerConnections without RegionId lists every region (sorted) in one paging sequence;
 *   a filtered listing's TotalCount is counted on the first page and carried in the NextToken.
 * - GetVpcPeerConnectionAttribute takes no RegionId and answers for an ID of any region (a RegionId sent is
 *   ignored); its quota is the account's one `central` bucket (model.ts quotaRegion), never a region's.
 * - Connections in status Deleting/Deleted are answered per `behaviour.deleted` (found/not-found,
 *   listed/hidden, ok/not-found/incorrect-status), since what the service does is unconfirmed.
 * - V3: host, content-type and every x-acs-* header sent must be signed; an STS key's security token is checked.
 * - The API facts behind these choices, with their sources, are in API-FACTS.md beside this file.
 * - ClientToken: only successful calls are remembered (per action); parameters compare as a normalised set.
 * - NextToken is bound to the estate: after PUT /_emulator/state or a regeneration it is InvalidParameter.
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const core = new EmulatorCore(options);
  const webhook = new WebhookDelivery(options.webhook);
  const server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const rawQuery = q < 0 ? '' : url.slice(q + 1);
    const accountsRoute = path === ACCOUNTS_ADMIN_PREFIX || path.startsWith(`${ACCOUNTS_ADMIN_PREFIX}/`);
    const work = path === WEBHOOK_PATH
      ? readBody(req, MAX_API_BODY).then((body) => handleWebhookAdmin(webhook, req, res, body))
      : path.startsWith(ADMIN_PREFIX) || path === ADMIN_PREFIX.slice(0, -1)
        ? readBody(req, MAX_ADMIN_BODY).then((body) =>
            accountsRoute ? handleAccountsAdmin(core, req, res, path, rawQuery, body) : handleAdmin(core, req, res, path, rawQuery, body))
        : handleApi(core, req, res, path, rawQuery, webhook);
    work.catch((err: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        const tooLarge = err instanceof BodyTooLarge;
        res.writeHead(tooLarge ? 413 : 500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: tooLarge ? 'body too large' : err instanceof Error ? err.message : String(err) }));
      } else {
        res.destroy();
      }
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}`,
    host,
    port,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        webhook.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
