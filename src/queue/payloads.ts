// The job payload schemas: the contract with every producer, in any language (schemas/jobs.schema.json).
import { z } from 'zod';
import { type Batch, KNOWN_REGIONS, MAX_IDS_PER_CALL, MAX_KEYS_PER_CALL, MAX_REGION_ID_LENGTH, REGION_ID_PATTERN, tagKeyProblem } from '../model.js';

export const RESOURCE_ID = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be a peering connection ID such as pcc-bp1abc (letters, digits, - and _)');
/** Any well-formed region ID: a region VpcPeer lists after KNOWN_REGIONS was written can still be governed. */
export const REGION = z
  .string()
  .max(MAX_REGION_ID_LENGTH, `region must be at most ${MAX_REGION_ID_LENGTH} characters`)
  .regex(REGION_ID_PATTERN, 'region is not a region ID (lowercase letters and digits in dash-separated parts, such as cn-hangzhou)')
  .describe(`a region ID; VpcPeer lists ${KNOWN_REGIONS.join(', ')}`);
export const TAG_KEY = z.string().superRefine((key, ctx) => {
  const problem = tagKeyProblem(key);
  if (problem) ctx.addIssue({ code: 'custom', message: `tag key ${problem}` });
});
export const TOKEN = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 ASCII letters, digits, - or _ (it is the jobId and the ClientToken)')
  .refine((s) => !/^\d+$/.test(s), 'must not be all digits (BullMQ rejects integer-like jobIds)');
const NAME = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and -');

/** One UnTagResources call: what a job on an untag queue carries. */
export const UntagJobSchema = z
  .object({
    v: z.literal(1, { error: 'schema version must be 1' }),
    batchId: TOKEN,
    policy: NAME.describe('the policy that planned the batch, or "api" for requests from other systems'),
    region: REGION,
    runId: z.string().min(1).max(128),
    resourceIds: z.array(RESOURCE_ID).min(1).max(MAX_IDS_PER_CALL, `at most ${MAX_IDS_PER_CALL} resource IDs per job`),
    tagKeys: z.array(TAG_KEY).max(MAX_KEYS_PER_CALL, `at most ${MAX_KEYS_PER_CALL} tag keys per job`),
    all: z.boolean(),
    carried: z.record(RESOURCE_ID, z.array(z.string())).optional()
      .describe('scan batches: keys each resource carried when planned; absent means read them before the call'),
    observed: z.record(RESOURCE_ID, z.array(z.string())).optional()
      .describe('set by the worker: the keys each resource carried just before an all=true call'),
    eventTimes: z.record(RESOURCE_ID, z.number().int().nonnegative()).optional()
      .describe('event batches: epoch ms of the earliest event that named each resource (for the event-to-removal histogram)'),
    source: z.enum(['scan', 'api', 'event']).describe('scan: planned by a scan; event: planned from ActionTrail events; api: from another system'),
    dryRun: z.boolean(),
    reason: z.string().max(500).optional(),
  })
  .strict()
  .superRefine((job, ctx) => {
    if (job.all && job.tagKeys.length > 0) ctx.addIssue({ code: 'custom', path: ['tagKeys'], message: 'must be empty when all is true' });
    if (!job.all && job.tagKeys.length === 0) ctx.addIssue({ code: 'custom', path: ['tagKeys'], message: 'give 1-20 keys, or set all to true' });
    if (new Set(job.resourceIds).size !== job.resourceIds.length) ctx.addIssue({ code: 'custom', path: ['resourceIds'], message: 'must not repeat an ID' });
    if (job.source !== 'api' && job.all && !job.carried) {
      ctx.addIssue({ code: 'custom', path: ['carried'], message: 'scan and event batches with all=true must list the keys each resource carried' });
    }
  });
export type UntagJob = z.infer<typeof UntagJobSchema>;

/** A scan of one policy in one region; the policy travels in the job so every replica scans the same version. */
export const ScanJobSchema = z
  .object({
    v: z.literal(1, { error: 'schema version must be 1' }),
    policy: z.record(z.string(), z.unknown()).describe('the policy document (apiVersion, kind, metadata, spec) as JSON'),
    region: REGION,
    trigger: z.enum(['schedule', 'api', 'once']),
    runId: z.string().min(1).max(128).optional().describe('defaults to the job ID'),
  })
  .strict();
export type ScanJob = z.infer<typeof ScanJobSchema>;

/** A request from another system: any number of IDs and keys; split into valid jobs by the producer. */
export const UntagRequestSchema = z
  .object({
    region: REGION,
    resourceIds: z.array(RESOURCE_ID).min(1, 'give at least one resource ID').max(10_000),
    tagKeys: z.array(TAG_KEY).max(1_000).optional(),
    all: z.boolean().optional(),
    reason: z.string().min(1, 'say why, for the audit trail').max(500),
    idempotencyKey: TOKEN.optional(),
    dryRun: z.boolean().optional(),
    /** With an accounts file: the member account (its ID) whose connections these are; required there. */
    account: z.string().regex(/^[0-9]{1,32}$/, 'an account ID: digits').optional(),
  })
  .strict()
  .superRefine((req, ctx) => {
    const keys = req.tagKeys ?? [];
    if (req.all && keys.length > 0) ctx.addIssue({ code: 'custom', path: ['tagKeys'], message: 'give tagKeys or all: true, not both' });
    if (!req.all && keys.length === 0) ctx.addIssue({ code: 'custom', path: ['tagKeys'], message: 'give at least one tag key, or all: true' });
  });
export type UntagRequest = z.input<typeof UntagRequestSchema>;

/** Human-readable problems, one per bad field: `resourceIds[3]: must be ...`. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.length ? issue.path.map(String).join('.').replace(/\.(\d+)/g, '[$1]') : '(payload)'}: ${issue.message}`);
}

/** JSON Schema of the job payloads, for producers written in other languages. */
export function jobPayloadJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://github.com/tagwarden/tagwarden/schemas/jobs.schema.json',
    title: 'tagwarden job payloads',
    $defs: {
      UntagJob: z.toJSONSchema(UntagJobSchema, { io: 'input', unrepresentable: 'any' }),
      ScanJob: z.toJSONSchema(ScanJobSchema, { io: 'input', unrepresentable: 'any' }),
      UntagRequest: z.toJSONSchema(UntagRequestSchema, { io: 'input', unrepresentable: 'any' }),
    },
  };
}

/** The untag job of a planned scan batch (its id is the ClientToken); a scan and an applied saved plan both use it. */
export function scanJobOf(b: Batch, options: { dryRun: boolean; reason: string }): UntagJob {
  return {
    v: 1,
    batchId: b.id,
    policy: b.policy,
    region: b.region as UntagJob['region'],
    runId: b.runId,
    resourceIds: [...b.resourceIds],
    tagKeys: [...b.tagKeys],
    all: b.all,
    ...(b.carried ? { carried: Object.fromEntries(Object.entries(b.carried).map(([id, k]) => [id, [...k]])) } : {}),
    source: 'scan',
    dryRun: options.dryRun,
    reason: options.reason,
  };
}
