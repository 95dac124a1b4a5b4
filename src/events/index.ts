// Owns event-driven enforcement: EventBridge deliveries of ActionTrail events in, deduplicated and coalesced
// per region, read and planned into the normal untag batches. Must not call UnTagResources itself: batches go
// through the untag queues like every other removal.
export { parseDelivery, FIELD_LIMITS, type CloudEvent } from './cloudevents.js';
export { interpretEvent, callerAccessKeyId, eventAccountId, ACTED_EVENT_NAMES, IGNORE_REASONS, type Interpretation, type InterpretOptions, type IgnoreReason } from './actiontrail.js';
export { createEventStore, type EventStore, type Scope, type PendingEvent, type Claim } from './store.js';
export { createEventIntake, windowJobId, type EventIntake, type EventIntakeOptions, type EventsAnswer, type WindowJob } from './intake.js';
export { createWindowProcessor, type WindowDeps, type WindowResult, type AccountAccess } from './processor.js';
export { eventWindowQueueName } from '../queue/names.js';
export { createOwnIdentityRecorder, type OwnIdentityOptions } from './identity.js';
