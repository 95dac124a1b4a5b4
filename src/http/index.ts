// Owns the HTTP surface: /metrics, /healthz, /readyz, the /v1 API, its OpenAPI document and the Bull Board dashboard.
// Must not build queues, workers or policies itself: runtime/ passes them in through HttpDeps.
export { createHttpServer } from './server.js';
export { createMemorySessionStore, createRedisSessionStore } from './sessions.js';
export { buildOpenApiDocument } from './openapi.js';
export type { AccountView, EventSink, EventsAnswer, HttpDeps, HttpServer, ApiAccess, PolicyDirectory, PolicyView, ReadinessReport, ReadinessCheck, SessionStore } from './types.js';
