// The library surface other systems import: the producer, the job types and their schemas.
// Must not start anything: importing tagwarden opens no connection.
export {
  createProducer,
  untagQueueName,
  UntagRequestSchema,
  UntagJobSchema,
  ScanJobSchema,
  jobPayloadJsonSchema,
  type Producer,
  type ProducerOptions,
  type EnqueueResult,
  type UntagRequest,
  type UntagJob,
  type ScanJob,
} from './queue/index.js';
export { TagwardenError, type TagwardenErrorCode } from './errors.js';
export { KNOWN_REGIONS, MAX_IDS_PER_CALL, MAX_KEYS_PER_CALL } from './model.js';
