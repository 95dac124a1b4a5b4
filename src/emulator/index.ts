// Owns the local VpcPeer 2022-01-01 API emulator (signed RPC API + unsigned /_emulator/ admin API) for tests, demo and benchmarks.
// Must not be imported by production code: only cmd/ and tests use it; it never contacts the real cloud.
export { startEmulator, API_VERSION, HOST_ID, ADMIN_PREFIX } from './server.js';
export { createEmulatorAdmin, type EmulatorAdmin, type EmulatorAccountInfo } from './admin-client.js';
export { STS_VERSION, RESOURCE_MANAGER_VERSION, DEFAULT_MEMBER_ROLE } from './accounts.js';
export { generateEstate, DEFAULT_GENERATE_REGIONS, GENERATED_TEAMS, GENERATED_PROJECTS } from './generate.js';
export { EMULATOR_ERRORS, type EmulatorErrorCode } from './api-errors.js';
export { DEFAULT_CREDENTIALS, DEFAULT_CLIENT_TOKEN_TTL_MS, DEFAULT_NONCE_TTL_MS, DEFAULT_MAX_CALL_LOG } from './core.js';
export { validateFaults, FAULT_KINDS } from './faults.js';
export { MAX_CLOCK_SKEW_MS } from './auth.js';
export { WEBHOOK_PATH, actionTrailEvent, validateWebhook, type WebhookConfig, type WebhookStats } from './webhook.js';
export { checkState, expectedRemovals, toResource, type StateCheck } from './verify.js';
export type {
  CallCounters, CallLogPage, EmulatorAccount, CallRecord, DeletedBehaviour, EmulatorBehaviour, EmulatorCredential, EmulatorLimits,
  EmulatorOptions, EmulatorResource, EmulatorStateDoc, PagingBehaviour,
  EmulatorStats, FaultConfig, FaultKind, GenerateOptions, QuotaState, QuotaUpdate, RunningEmulator,
} from './types.js';
