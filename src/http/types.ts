// The interfaces the HTTP surface needs from the rest of the daemon; runtime/ passes the concrete parts in.
import type { Queue } from 'bullmq';
import type { RenderableRegistry } from '../metrics/index.js';
import type { Logger } from '../logging/index.js';
import type { EnqueueResult, JobInspector } from '../queue/index.js';

/** One readiness check: ok, and a short reason when not. */
export interface ReadinessCheck {
  ok: boolean;
  detail?: string;
}

/** What GET /readyz reports: ready only when every check is ok. */
export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, ReadinessCheck>;
}

/** A loaded policy as GET /v1/policies shows it. Extra fields the runtime adds are shown as they are. */
export interface PolicyView {
  name: string;
  /** The file it was loaded from. */
  source?: string;
  regions?: readonly string[];
  schedule?: string;
  dryRun?: boolean;
  /** True while the policy is halted by its blast-radius cap. */
  halted?: boolean;
  /** Summary of the last run (scanned, violating, removed, failed, ...). */
  lastRun?: unknown;
  /** Load, validation or scan errors. */
  errors?: readonly string[];
}

/** A member account as GET /v1/accounts shows it. */
export interface AccountView {
  id: string;
  name: string;
  source: 'file' | 'directory';
  tags: Readonly<Record<string, string>>;
  /** `governed`: its role was assumed and its workers run; `skipped`: its role cannot be assumed (see reason). */
  state: 'governed' | 'skipped' | 'starting';
  reason?: string;
  /** AssumeRole calls this process made for the account. */
  stsCalls: number;
  /** When the current session expires (ISO), when one is held. */
  sessionExpiresAt?: string;
  /** The policies that govern it. */
  policies: readonly string[];
}

/** The policies the daemon runs, and a way to scan one now. */
export interface PolicyDirectory {
  list(): Promise<readonly PolicyView[]>;
  /**
   * Enqueues a scan of the named policy, one per region, unless one is running or queued already: then that
   * scan's job is answered. Null when no policy has that name.
   */
  scanNow(name: string): Promise<{ jobIds: string[]; scans?: ReadonlyArray<{ region: string; jobId: string; state: 'running' | 'queued' }> } | null>;
}

/** Who may use /v1 (except the OpenAPI document) and /admin. */
export interface ApiAccess {
  /** The bearer token (TAGWARDEN_API_TOKEN). Without it, and without `open`, /v1 and /admin answer 503. */
  token?: string | undefined;
  /** Serve /v1 and /admin without a token (TAGWARDEN_API_OPEN, demos only). Ignored when a token is set. */
  open: boolean;
  /** Largest accepted request body in bytes (TAGWARDEN_MAX_BODY_BYTES); bigger ones get 413. */
  maxBodyBytes: number;
}

/** Where dashboard sessions live (by the SHA-256 of their ID); shared by every replica in the daemon. */
export interface SessionStore {
  create(key: string, ttlSeconds: number): Promise<void>;
  exists(key: string): Promise<boolean>;
  remove(key: string): Promise<void>;
}

/** What POST /v1/events answers for an accepted delivery. */
export interface EventsAnswer {
  received: number;
  accepted: number;
  ignored: number;
  duplicates: number;
}

/** The receiver of EventBridge deliveries (src/events). */
export interface EventSink {
  /**
   * The EventBridge HTTP target's token (`x-eventbridge-signature-token`). Without it that header may carry
   * the API token instead. The bearer API token is always accepted.
   */
  token?: string | undefined;
  /** Throws PAYLOAD_INVALID (400, the fields named) for malformed events. */
  accept(body: unknown): Promise<EventsAnswer>;
}

/** Everything createHttpServer needs. */
export interface HttpDeps {
  logger: Logger;
  /** Served at GET /metrics, with the registry's content type (a Registry, or one that merges several). */
  registry: RenderableRegistry;
  /** GET /v1/accounts: the governed member accounts (with an accounts file); absent: 404. */
  accounts?: { list(): Promise<readonly AccountView[]> };
  /** GET /healthz: answers 200 when ok. That the handler runs at all shows the event loop answers. */
  liveness(): { ok: boolean; detail?: object };
  /** GET /readyz: 200 when ready, else 503 with the failing checks. */
  readiness(): Promise<ReadinessReport>;
  api: ApiAccess;
  /** Queues untag requests (createProducer from queue/). */
  producer: { untag(request: unknown): Promise<EnqueueResult> };
  /** Finds, lists and retries jobs (createJobInspector from queue/). */
  jobs: JobInspector;
  policies: PolicyDirectory;
  /** POST /v1/events; absent: that route answers 503. */
  events?: EventSink;
  /** The queues shown by Bull Board at /admin/queues; the runtime owns and closes them. */
  queues: readonly Queue[];
  /** Card titles and info tips of those queues, by queue name (e.g. region first, full name in the tip). */
  queueLabels?: Readonly<Record<string, { displayName: string; description: string }>>;
  /** The untag workers' limiter maximum: a queue is shown rate limited at it or when paused by a throttle. */
  rateLimitMax?: number;
  /** How long /readyz and /metrics may take before answering 503 (default 5000 ms). */
  probeTimeoutMs?: number;
  /** The version shown in the OpenAPI document (default 0.0.0). */
  version?: string;
  /** Secret values scrubbed from every JSON answer, as from the logs. */
  secrets?: readonly string[];
  /** Dashboard sessions (default: in this process only). */
  sessions?: SessionStore;
}

/** The HTTP server: listen once, close idempotently. */
export interface HttpServer {
  /** Starts listening; resolves with the bound port (useful with port 0). */
  listen(port: number, host: string): Promise<{ port: number }>;
  /** Stops accepting connections, lets requests in flight finish (up to 5 s) and closes. Idempotent. */
  close(): Promise<void>;
}
