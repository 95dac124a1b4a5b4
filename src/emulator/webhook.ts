// Delivers an ActionTrail-shaped CloudEvent to webhook URLs for every successful tag write, as EventBridge's
// HTTP target would: one POST per event, redelivered with backoff on failure, optionally duplicated.
// Must not block or fail the API call that caused the event: delivery runs after the answer, bounded in memory.
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The unsigned admin route of the webhook: GET (config without the token, stats), PUT (configure), DELETE (off). */
export const WEBHOOK_PATH = '/_emulator/webhook';

/** Webhook settings: at start (`EmulatorOptions.webhook`) or later (`PUT /_emulator/webhook`). */
export interface WebhookConfig {
  /** Where events go; several URLs are used in turn (a Service in front of replicas), a redelivery goes to the next. */
  urls: string[];
  /** Sent as `x-eventbridge-signature-token` (the HTTP target's token), when set. */
  token?: string;
  /** Actions that produce events (default TagResources only). */
  actions?: string[];
  /** Probability (0..1) that an event is delivered twice (EventBridge delivers at least once). */
  duplicates?: number;
  /** Attempts per delivery before the event is dropped (counted as deadLettered); default 20. */
  maxAttempts?: number;
  /** First retry delay; doubles per attempt up to 5 s; default 100 ms. */
  retryBaseMs?: number;
  /** Deliveries in flight at once; default 16. */
  concurrency?: number;
  /** Events waiting beyond this are dropped (counted); default 100000. */
  maxPending?: number;
  /** The account ID written into events; default 1234567890123456. */
  accountId?: string;
}

/** Counters of `GET /_emulator/webhook`. */
export interface WebhookStats {
  /** Events created (one per successful call of a configured action). */
  events: number;
  /** POSTs answered 2xx. */
  delivered: number;
  /** POSTs that failed (non-2xx, network error) and were retried or dropped. */
  failedAttempts: number;
  /** Events whose every attempt failed. */
  deadLettered: number;
  /** Extra copies sent on purpose (`duplicates`). */
  duplicated: number;
  /** Events dropped because the pending queue was full. */
  overflowed: number;
  /** Waiting or in flight. */
  pending: number;
}

/** What the API server hands over after a successful call. */
export interface ApiCallFacts {
  action: string;
  region: string;
  requestId: string;
  /** The raw business parameters as sent (`ResourceId.1`, `Tag.1.Key`, ...). */
  params: Record<string, string>;
  accessKeyId: string | null;
  userAgent: string;
  sourceIp: string;
  /** Epoch ms of the call. */
  at: number;
}

interface Delivery {
  body: string;
  attempt: number;
  notBefore: number;
}

const DEFAULTS = { maxAttempts: 20, retryBaseMs: 100, concurrency: 16, maxPending: 100_000, accountId: '1234567890123456' };
const MAX_RETRY_MS = 5_000;
const POST_TIMEOUT_MS = 10_000;

/** Checks a webhook config; throws with the field at fault. */
export function validateWebhook(value: unknown): WebhookConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('webhook must be an object');
  const v = value as Record<string, unknown>;
  const urls = v['urls'] ?? (typeof v['url'] === 'string' ? [v['url']] : undefined);
  if (!Array.isArray(urls) || urls.some((u) => typeof u !== 'string' || !/^https?:\/\//.test(u))) {
    throw new Error('webhook.urls must be a list of http(s) URLs');
  }
  const out: WebhookConfig = { urls: urls as string[] };
  if (v['token'] !== undefined) {
    if (typeof v['token'] !== 'string' || v['token'] === '') throw new Error('webhook.token must be a non-empty string');
    out.token = v['token'];
  }
  if (v['actions'] !== undefined) {
    if (!Array.isArray(v['actions']) || v['actions'].some((a) => typeof a !== 'string')) throw new Error('webhook.actions must be a list of action names');
    out.actions = v['actions'] as string[];
  }
  const num = (name: keyof WebhookConfig, min: number, max: number, integer: boolean): void => {
    const n = v[name];
    if (n === undefined) return;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new Error(`webhook.${name} must be a number from ${min} to ${max}`);
    }
    (out as unknown as Record<string, number>)[name] = n;
  };
  num('duplicates', 0, 1, false);
  num('maxAttempts', 1, 1000, true);
  num('retryBaseMs', 1, 60_000, true);
  num('concurrency', 1, 256, true);
  num('maxPending', 1, 10_000_000, true);
  if (v['accountId'] !== undefined) {
    if (typeof v['accountId'] !== 'string' || !/^\d{1,32}$/.test(v['accountId'])) throw new Error('webhook.accountId must be digits');
    out.accountId = v['accountId'];
  }
  return out;
}

/** Resource IDs of `ResourceId.N`, in N order. */
function listParam(params: Record<string, string>, name: string): string[] {
  const found: Array<[number, string]> = [];
  const re = new RegExp(`^${name}\\.(\\d+)$`);
  for (const [k, value] of Object.entries(params)) {
    const m = re.exec(k);
    if (m) found.push([Number(m[1]), value]);
  }
  return found.sort((a, b) => a[0] - b[0]).map(([, value]) => value);
}

/**
 * The CloudEvent EventBridge delivers for an ActionTrail ApiCall, as documented for ActionTrail events on
 * EventBridge (type `actiontrail:ActionTrail:ApiCall`, ActionTrail's management-event fields in `data`).
 * Where the documentation gives no VpcPeer example (serviceName, resourceName) the emulator writes one
 * plausible value; tagwarden accepts the alternatives too (see src/events/actiontrail.ts).
 */
export function actionTrailEvent(facts: ApiCallFacts, accountId: string): Record<string, unknown> {
  const id = randomUUID();
  const time = new Date(facts.at).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const ids = listParam(facts.params, 'ResourceId');
  // A stable numeric principal per access key, as ActionTrail shows a RAM user's ID.
  let principal = 0;
  for (const ch of facts.accessKeyId ?? '') principal = (principal * 31 + ch.charCodeAt(0)) % 1e15;
  const principalId = facts.accessKeyId ? String(2e15 + principal) : accountId;
  return {
    specversion: '1.0',
    id,
    source: 'acs.actiontrail',
    type: 'actiontrail:ActionTrail:ApiCall',
    subject: `acs.actiontrail:${facts.region}:${accountId}:${ids[0] ?? ''}`,
    time,
    datacontenttype: 'application/json;charset=utf-8',
    aliyunaccountid: accountId,
    aliyunpublishtime: new Date(facts.at + 5).toISOString(),
    aliyuneventbusname: 'default',
    aliyunregionid: facts.region,
    aliyunpublishaddr: '127.0.0.1',
    data: {
      eventId: id,
      eventVersion: 1,
      eventType: 'ApiCall',
      eventRW: 'Write',
      eventCategory: 'Management',
      eventName: facts.action,
      eventSource: 'vpcpeer.aliyuncs.com',
      serviceName: 'VpcPeer',
      apiVersion: '2022-01-01',
      acsRegion: facts.region,
      eventTime: time,
      requestId: facts.requestId,
      sourceIpAddress: facts.sourceIp,
      userAgent: facts.userAgent,
      isGlobal: false,
      recipientAccountId: accountId,
      userIdentity: {
        type: 'ram-user',
        accountId,
        principalId,
        userName: facts.accessKeyId ? `user-${facts.accessKeyId}` : 'root',
        ...(facts.accessKeyId ? { accessKeyId: facts.accessKeyId } : {}),
      },
      requestParameters: { ...facts.params, AcsHost: 'vpcpeer.aliyuncs.com', RequestId: facts.requestId },
      responseElements: { RequestId: facts.requestId, Success: true },
      resourceType: 'ACS::VPC::PeerConnection',
      resourceName: ids.join(';'),
      referencedResources: { 'ACS::VPC::PeerConnection': ids },
    },
  };
}

/** The delivery loop: a bounded queue of POSTs, retried with capped exponential backoff. */
export class WebhookDelivery {
  private config: WebhookConfig | undefined;
  private readonly queue: Delivery[] = [];
  private inFlight = 0;
  private next = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counters: Omit<WebhookStats, 'pending'> = { events: 0, delivered: 0, failedAttempts: 0, deadLettered: 0, duplicated: 0, overflowed: 0 };

  constructor(
    config: WebhookConfig | undefined,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {
    this.config = config;
  }

  configure(config: WebhookConfig | undefined): void {
    this.config = config;
    this.pump();
  }

  current(): WebhookConfig | undefined {
    return this.config;
  }

  stats(): WebhookStats {
    return { ...this.counters, pending: this.queue.length + this.inFlight };
  }

  /** Called once per successful API call; creates and queues the event when the action is one configured. */
  publish(facts: ApiCallFacts): void {
    const config = this.config;
    if (!config || this.closed || config.urls.length === 0) return;
    if (!(config.actions ?? ['TagResources']).includes(facts.action)) return;
    const body = JSON.stringify(actionTrailEvent(facts, config.accountId ?? DEFAULTS.accountId));
    this.counters.events += 1;
    this.enqueue(body);
    if ((config.duplicates ?? 0) > 0 && this.random() < (config.duplicates ?? 0)) {
      this.counters.duplicated += 1;
      this.enqueue(body);
    }
    this.pump();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.queue.length = 0;
  }

  private enqueue(body: string): void {
    if (this.queue.length >= (this.config?.maxPending ?? DEFAULTS.maxPending)) {
      this.counters.overflowed += 1;
      return;
    }
    this.queue.push({ body, attempt: 0, notBefore: 0 });
  }

  private pump(): void {
    const config = this.config;
    if (!config || this.closed) return;
    const limit = config.concurrency ?? DEFAULTS.concurrency;
    const now = this.now();
    let wait = Infinity;
    for (let i = 0; i < this.queue.length && this.inFlight < limit; ) {
      const d = this.queue[i];
      if (d === undefined) break;
      if (d.notBefore > now) {
        wait = Math.min(wait, d.notBefore - now);
        i += 1;
        continue;
      }
      this.queue.splice(i, 1);
      this.inFlight += 1;
      const url = config.urls[this.next++ % config.urls.length] ?? config.urls[0] ?? '';
      void this.post(url, d.body, config.token).then((ok) => {
        this.inFlight -= 1;
        if (ok) {
          this.counters.delivered += 1;
        } else {
          this.counters.failedAttempts += 1;
          d.attempt += 1;
          if (d.attempt >= (this.config?.maxAttempts ?? DEFAULTS.maxAttempts)) {
            this.counters.deadLettered += 1;
          } else if (!this.closed) {
            const base = this.config?.retryBaseMs ?? DEFAULTS.retryBaseMs;
            d.notBefore = this.now() + Math.min(MAX_RETRY_MS, base * 2 ** (d.attempt - 1));
            this.queue.push(d);
          }
        }
        this.pump();
      });
    }
    if (wait !== Infinity && this.inFlight < limit) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.pump(), wait);
      this.timer.unref();
    }
  }

  private post(url: string, body: string, token: string | undefined): Promise<boolean> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (ok: boolean): void => {
        if (!done) {
          done = true;
          resolve(ok);
        }
      };
      try {
        const send = url.startsWith('https:') ? httpsRequest : request;
        const req = send(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/cloudevents+json; charset=utf-8',
            'content-length': Buffer.byteLength(body),
            'user-agent': 'tagwarden-emulator-eventbridge',
            ...(token ? { 'x-eventbridge-signature-token': token } : {}),
          },
          timeout: POST_TIMEOUT_MS,
        });
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => finish((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300));
          res.on('error', () => finish(false));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', () => finish(false));
        req.end(body);
      } catch {
        finish(false);
      }
    });
  }
}

function reply(res: ServerResponse, status: number, value: unknown): void {
  const json = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json;charset=utf-8', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

/** `GET|PUT|DELETE /_emulator/webhook`. The token is never shown back. */
export function handleWebhookAdmin(webhook: WebhookDelivery, req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const view = () => {
    const config = webhook.current();
    const { token, ...rest } = config ?? { urls: [] };
    return { enabled: config !== undefined, config: { ...rest, token: token ? 'set' : 'unset' }, stats: webhook.stats() };
  };
  switch (req.method) {
    case 'GET':
      reply(res, 200, view());
      return;
    case 'PUT': {
      let config: WebhookConfig;
      try {
        config = validateWebhook(JSON.parse(body.toString('utf8')) as unknown);
      } catch (err) {
        reply(res, 400, { error: err instanceof SyntaxError ? 'body must be JSON' : err instanceof Error ? err.message : String(err) });
        return;
      }
      webhook.configure(config);
      reply(res, 200, view());
      return;
    }
    case 'DELETE':
      webhook.configure(undefined);
      reply(res, 200, view());
      return;
    default:
      reply(res, 405, { error: 'use GET, PUT or DELETE' });
  }
}
