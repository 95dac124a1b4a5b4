// The OpenAPI 3.1 document of the HTTP API. Request schemas come from the zod payload schemas, so they cannot drift.
import { z } from 'zod';
import { FIELD_LIMITS } from '../events/index.js';
import { UntagJobSchema, UntagRequestSchema, LISTABLE_STATES } from '../queue/index.js';

type Json = Record<string, unknown>;

/** JSON Schema (2020-12, the OpenAPI 3.1 dialect) of a zod schema, without the `$schema` key. */
function fromZod(schema: z.ZodType): Json {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });
  return rest;
}

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json, description: string): Json => ({ description, content: { 'application/json': { schema } } });
const errorResponse = (description: string): Json => json(ref('Error'), description);

const UNAUTHORIZED = errorResponse('Missing or wrong bearer token (see the WWW-Authenticate header).');
const DISABLED = errorResponse('The API is off: set TAGWARDEN_API_TOKEN.');
const secured = { security: [{ bearerAuth: [] }] };

/** Builds the document served at GET /v1/openapi.json. */
export function buildOpenApiDocument(version: string): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'tagwarden',
      version,
      description:
        'Queue tag removals on Alibaba Cloud VPC peering connections, scan policies on demand and inspect jobs. ' +
        'Every /v1 path except this document needs `Authorization: Bearer <TAGWARDEN_API_TOKEN>`.',
    },
    servers: [{ url: '/' }],
    paths: {
      '/v1/untag': {
        post: {
          operationId: 'untag',
          summary: 'Queue the removal of tags from resources',
          description:
            'Splits the request into batches of at most 20 IDs x 20 keys, one BullMQ job each. The same idempotencyKey ' +
            'with the same request queues nothing new for 24 h (created: false); with another request it is refused (409).',
          ...secured,
          requestBody: { required: true, content: { 'application/json': { schema: ref('UntagRequest') } } },
          responses: {
            '202': json(ref('EnqueueResult'), 'Queued (or already queued under this idempotencyKey).'),
            '400': json(ref('InvalidRequest'), 'Malformed JSON or invalid fields, each named in problems.'),
            '401': UNAUTHORIZED,
            '409': errorResponse('idempotencyKey already used for a different request.'),
            '413': errorResponse('Body larger than TAGWARDEN_MAX_BODY_BYTES.'),
            '415': errorResponse('Content-Type is not application/json.'),
            '503': DISABLED,
          },
        },
      },
      '/v1/accounts': {
        get: {
          operationId: 'listAccounts',
          summary: 'Member accounts (with an accounts file): governed or skipped, with the reason, STS calls and policies',
          ...secured,
          responses: {
            '200': json({ type: 'object', properties: { accounts: { type: 'array', items: ref('AccountView') } }, required: ['accounts'] }, 'The accounts.'),
            '401': UNAUTHORIZED,
            '404': errorResponse('No accounts file: this deployment governs one account.'),
            '503': DISABLED,
          },
        },
      },
      '/v1/policies': {
        get: {
          operationId: 'listPolicies',
          summary: 'Loaded policies, their last run, errors and halted state',
          ...secured,
          responses: {
            '200': json({ type: 'object', properties: { policies: { type: 'array', items: ref('PolicyView') } }, required: ['policies'] }, 'The policies.'),
            '401': UNAUTHORIZED,
            '503': DISABLED,
          },
        },
      },
      '/v1/policies/{name}/scan': {
        post: {
          operationId: 'scanPolicy',
          summary: 'Scan one policy now',
          ...secured,
          parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '202': json(ref('ScanAccepted'), 'Scan jobs queued, one per region.'),
            '401': UNAUTHORIZED,
            '404': errorResponse('No policy with this name.'),
            '409': errorResponse('The policy cannot be scanned now (halted).'),
            '503': DISABLED,
          },
        },
      },
      '/v1/jobs': {
        get: {
          operationId: 'listJobs',
          summary: 'Jobs in one state across every queue, newest first',
          ...secured,
          parameters: [
            { name: 'state', in: 'query', required: true, schema: { type: 'string', enum: [...LISTABLE_STATES] } },
            { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
          ],
          responses: {
            '200': json({ type: 'object', properties: { jobs: { type: 'array', items: ref('JobView') } }, required: ['jobs'] }, 'The jobs.'),
            '400': json(ref('InvalidRequest'), 'Unknown state or bad limit.'),
            '401': UNAUTHORIZED,
            '503': DISABLED,
          },
        },
      },
      '/v1/jobs/{id}': {
        get: {
          operationId: 'getJob',
          summary: 'One job: state, attempts, failure reason, payload and per-resource outcome',
          ...secured,
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': json(ref('JobView'), 'The job.'),
            '401': UNAUTHORIZED,
            '404': errorResponse('No job with this ID in any queue.'),
            '503': DISABLED,
          },
        },
      },
      '/v1/jobs/{id}/retry': {
        post: {
          operationId: 'retryJob',
          summary: 'Move a failed job back to waiting',
          ...secured,
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': json(ref('JobView'), 'The job after the retry was queued.'),
            '401': UNAUTHORIZED,
            '404': errorResponse('No job with this ID in any queue.'),
            '409': errorResponse('The job is not failed.'),
            '503': DISABLED,
          },
        },
      },
      '/v1/events': {
        post: {
          operationId: 'events',
          summary: 'Receive EventBridge deliveries of ActionTrail events (CloudEvents 1.0)',
          description:
            'The EventBridge HTTP target of a rule matching ActionTrail TagResources / CreateVpcPeerConnection calls. One ' +
            'CloudEvent, a JSON array of them, or `{"events": [...]}`. New events (deduplicated on source + id) are ' +
            'recorded in Redis before the answer, then read and planned per region window. A delivery with one bad event ' +
            'is refused whole (400), so EventBridge retries or dead-letters it and nothing is half-recorded.',
          security: [{ eventBridgeToken: [] }, { bearerAuth: [] }],
          requestBody: {
            required: true,
            content: {
              'application/cloudevents+json': { schema: ref('CloudEvent') },
              'application/cloudevents-batch+json': { schema: { type: 'array', items: ref('CloudEvent'), minItems: 1 } },
              'application/json': { schema: ref('EventsDelivery') },
            },
          },
          responses: {
            '200': json(ref('EventsAnswer'), 'Recorded: counts of new, ignored and duplicate events.'),
            '400': json(ref('InvalidRequest'), 'Malformed JSON or events, each bad field named (`events[3].id: required (CloudEvents 1.0)`).'),
            '401': errorResponse('Neither x-eventbridge-signature-token nor the bearer token matched.'),
            '413': errorResponse('Body larger than TAGWARDEN_MAX_BODY_BYTES.'),
            '415': errorResponse('Content-Type is not JSON.'),
            '503': errorResponse('Events are off: set TAGWARDEN_EVENTS_TOKEN or TAGWARDEN_API_TOKEN.'),
          },
        },
      },
      '/v1/openapi.json': {
        get: { operationId: 'openapi', summary: 'This document', responses: { '200': json({ type: 'object' }, 'OpenAPI 3.1 document.') } },
      },
      '/healthz': {
        get: {
          operationId: 'liveness',
          summary: 'Liveness probe',
          responses: {
            '200': json(ref('Health'), 'The process answers.'),
            '503': json(ref('Health'), 'The process should be restarted.'),
          },
        },
      },
      '/readyz': {
        get: {
          operationId: 'readiness',
          summary: 'Readiness probe: Redis, workers, policies, credentials',
          responses: {
            '200': json(ref('Readiness'), 'Ready for work.'),
            '503': json(ref('Readiness'), 'Not ready; the failing checks say why.'),
          },
        },
      },
      '/metrics': {
        get: {
          operationId: 'metrics',
          summary: 'Prometheus metrics',
          responses: { '200': { description: 'Prometheus text exposition format.', content: { 'text/plain': { schema: { type: 'string' } } } } },
        },
      },
    },
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'TAGWARDEN_API_TOKEN' },
        eventBridgeToken: {
          type: 'apiKey',
          in: 'header',
          name: 'x-eventbridge-signature-token',
          description: 'TAGWARDEN_EVENTS_TOKEN (or TAGWARDEN_API_TOKEN when that is unset): the token header of the EventBridge HTTP target.',
        },
      },
      schemas: {
        UntagRequest: fromZod(UntagRequestSchema),
        UntagJob: fromZod(UntagJobSchema),
        EnqueueResult: {
          type: 'object',
          properties: {
            jobIds: { type: 'array', items: { type: 'string' }, description: 'One per batch; each is also the ClientToken.' },
            created: { type: 'boolean', description: 'False when the idempotencyKey had already queued this request.' },
          },
          required: ['jobIds', 'created'],
        },
        ScanAccepted: {
          type: 'object',
          properties: {
            jobIds: { type: 'array', items: { type: 'string' }, description: 'One scan job per region: the running or queued scan when there is one.' },
            scans: {
              type: 'array',
              description: 'Per region: the scan job and whether it was already running (a second request gets the running scan, not a second one).',
              items: {
                type: 'object',
                properties: { region: { type: 'string' }, jobId: { type: 'string' }, state: { type: 'string', enum: ['running', 'queued'] } },
                required: ['region', 'jobId', 'state'],
              },
            },
          },
          required: ['jobIds'],
        },
        JobView: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            queue: { type: 'string' },
            name: { type: 'string', description: 'untag or scan' },
            state: { type: 'string', description: 'waiting, active, delayed, prioritized, completed, failed, waiting-children or unknown' },
            attemptsMade: { type: 'integer' },
            attempts: { type: 'integer', description: 'Attempts allowed before the job fails for good.' },
            failedReason: { type: ['string', 'null'] },
            data: { description: 'The job payload (an UntagJob for untag jobs).' },
            returnvalue: { description: 'What the worker returned: for untag jobs, the per-resource outcome. Null until completed.' },
            timestamps: {
              type: 'object',
              properties: {
                created: { type: 'string', format: 'date-time' },
                processed: { type: ['string', 'null'], format: 'date-time' },
                finished: { type: ['string', 'null'], format: 'date-time' },
              },
              required: ['created', 'processed', 'finished'],
            },
          },
          required: ['id', 'queue', 'name', 'state', 'attemptsMade', 'attempts', 'failedReason', 'data', 'returnvalue', 'timestamps'],
        },
        AccountView: {
          type: 'object',
          properties: {
            id: { type: 'string', pattern: '^[0-9]+$' },
            name: { type: 'string' },
            source: { enum: ['file', 'directory'] },
            tags: { type: 'object', additionalProperties: { type: 'string' } },
            state: { enum: ['governed', 'skipped', 'starting'] },
            reason: { type: 'string', description: 'Why the account is skipped (the STS error code).' },
            stsCalls: { type: 'integer', description: 'AssumeRole calls this process made for the account.' },
            sessionExpiresAt: { type: 'string', format: 'date-time' },
            policies: { type: 'array', items: { type: 'string' } },
          },
          required: ['id', 'name', 'source', 'tags', 'state', 'stsCalls', 'policies'],
        },
        PolicyView: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            source: { type: 'string' },
            regions: { type: 'array', items: { type: 'string' } },
            schedule: { type: 'string' },
            dryRun: { type: 'boolean' },
            halted: { type: 'boolean' },
            lastRun: { type: 'object', description: 'Summary of the last run.' },
            errors: { type: 'array', items: { type: 'string' } },
          },
          required: ['name'],
        },
        CloudEvent: {
          type: 'object',
          description:
            'A CloudEvents 1.0 structured event as EventBridge delivers it; for ActionTrail, `data` holds the management event ' +
            '(eventName, eventType, acsRegion, userIdentity, requestParameters, ...). Other attributes are allowed and ignored.',
          properties: {
            specversion: { const: '1.0' },
            id: { type: 'string', minLength: 1, maxLength: FIELD_LIMITS.id },
            source: { type: 'string', minLength: 1, maxLength: FIELD_LIMITS.source },
            type: { type: 'string', minLength: 1, maxLength: FIELD_LIMITS.type, examples: ['actiontrail:ActionTrail:ApiCall', 'actiontrail:ActionTrail:ConsoleOperation'] },
            time: { type: 'string', format: 'date-time', maxLength: FIELD_LIMITS.time },
            subject: { type: 'string', minLength: 1, maxLength: FIELD_LIMITS.subject },
            aliyunaccountid: { type: ['string', 'number'], description: 'The account the event belongs to (EventBridge extension).' },
            aliyunregionid: { type: 'string', maxLength: FIELD_LIMITS.region },
            data: { description: 'An object, or a string holding JSON. `data_base64` is refused.' },
          },
          required: ['specversion', 'id', 'source', 'type'],
        },
        EventsDelivery: {
          oneOf: [
            ref('CloudEvent'),
            { type: 'array', items: ref('CloudEvent'), minItems: 1, description: 'A batch (at most TAGWARDEN_EVENTS_MAX_PER_REQUEST).' },
            { type: 'object', properties: { events: { type: 'array', items: ref('CloudEvent'), minItems: 1 } }, required: ['events'], not: { required: ['specversion'] } },
          ],
        },
        EventsAnswer: {
          type: 'object',
          properties: {
            received: { type: 'integer', minimum: 0, description: 'Well-formed events in the delivery.' },
            accepted: { type: 'integer', minimum: 0, description: 'New events naming connections to check.' },
            ignored: { type: 'integer', minimum: 0, description: 'Acknowledged without action (other events, own calls, failed calls, accounts or regions no policy covers).' },
            duplicates: { type: 'integer', minimum: 0, description: 'Seen before (same source and id), by this or another replica.' },
          },
          required: ['received', 'accepted', 'ignored', 'duplicates'],
        },
        Error: {
          type: 'object',
          properties: { error: { type: 'string', description: 'A stable code such as unauthorized, conflict, not_found.' }, message: { type: 'string' } },
          required: ['error'],
        },
        InvalidRequest: {
          type: 'object',
          properties: {
            error: { const: 'invalid_request' },
            problems: { type: 'array', items: { type: 'string' }, description: 'One per bad field, e.g. `resourceIds[3]: must be ...`.' },
          },
          required: ['error', 'problems'],
        },
        Health: { type: 'object', properties: { status: { type: 'string' }, detail: { type: 'object' } }, required: ['status'] },
        Readiness: {
          type: 'object',
          properties: {
            status: { enum: ['ready', 'not_ready'] },
            checks: {
              type: 'object',
              additionalProperties: { type: 'object', properties: { ok: { type: 'boolean' }, detail: { type: 'string' } }, required: ['ok'] },
            },
          },
          required: ['status', 'checks'],
        },
      },
    },
  };
}
