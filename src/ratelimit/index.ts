// Owns the global rate limiter: one quota per (account, region, API) kept in Redis for every replica.
// Must not call the cloud or know about queues: callers acquire before a call and penalize on throttling.
export { createRateLimiter, type AcquireResult, type RateLimiter, type RateLimiterOptions } from './rate-limiter.js';
export { createLocalPacer, type LocalPacer } from './local-pacer.js';
