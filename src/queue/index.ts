// Owns queue names, job payload schemas, the run ledger and the producer API for other systems.
// Must not process jobs or call the cloud: that is worker/'s job.
export { SCAN_QUEUE, BACKOFF_TYPE, EVENTS_TAG, accountTag, runTag, untagQueueName, accountQueuePrefix, eventWindowQueueName, untagJobOptions, scanJobOptions, safeRunId, type RetentionOptions } from './names.js';
export {
  UntagJobSchema,
  ScanJobSchema,
  UntagRequestSchema,
  describeIssues,
  jobPayloadJsonSchema,
  scanJobOf,
  type UntagJob,
  type ScanJob,
  type UntagRequest,
} from './payloads.js';
export { createProducer, parseUntagRequest, untagJobsOf, type Producer, type ProducerOptions, type EnqueueResult } from './producer.js';
export { createLedger, type Ledger, type PolicyRunSummary, type BatchEnd, type ScanCounts, type ScanSummary } from './ledger.js';
export { createScanLease, type LeaseHolder, type ScanLease } from './scan-lease.js';
export {
  CrossSlotKeysError,
  cachedScript,
  hashSource,
  checkRedis,
  connectionErrorReporter,
  createRedis,
  deletePrefix,
  errorFields,
  redisNodes,
  reportErrors,
  topologyKindOf,
  type ErrorEmitter,
  type RedisClient,
  type RedisConnectionOptions,
  type RedisHealth,
  type RedisNodeHealth,
  type RedisNodeState,
} from './redis.js';
export {
  describeTopology,
  parseRedisTopology,
  redactRedisUrl,
  topologySecrets,
  RedisUrlError,
  type RedisNodeAddress,
  type RedisTopology,
  type RedisTopologyKind,
} from './topology.js';
export { createJobInspector, LISTABLE_STATES, type JobInspector, type JobView, type ListableState } from './inspector.js';
