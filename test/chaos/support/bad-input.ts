// Bad input for the daemon, made from good input: mutated policy files (from the shipped policies), malformed job
// payloads (from a valid untag or scan job) and malformed API requests. Each says what its reason must name.
type Rng = () => number;

const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T;

// ---- policy files

/** One mutated policy file. */
export interface MutatedPolicy {
  /** File name, e.g. `mut-0007.yaml`. */
  file: string;
  text: string;
  /** The mutations applied, for failure messages. */
  mutations: string[];
}

interface Lines {
  lines: string[];
}

const isContent = (line: string) => line.trim() !== '' && !line.trimStart().startsWith('#') && line.trim() !== '---';
const indexOfKey = (doc: Lines, key: string) => doc.lines.findIndex((l) => new RegExp(`^\\s*${key}:`).test(l));
const indent = (line: string) => line.length - line.trimStart().length;

/** Replaces the value of the first `key:` line; false when the file has none. */
function setValue(doc: Lines, key: string, value: string): boolean {
  const i = indexOfKey(doc, key);
  if (i < 0) return false;
  const line = doc.lines[i] ?? '';
  // A block value (children on the next lines) goes with its key.
  let end = i + 1;
  while (end < doc.lines.length && (!isContent(doc.lines[end] ?? '') || indent(doc.lines[end] ?? '') > indent(line))) end++;
  const hasChildren = /:\s*(#.*)?$/.test(line);
  doc.lines.splice(i, hasChildren ? end - i : 1, `${' '.repeat(indent(line))}${key}: ${value}`);
  return true;
}

/** Deletes the first `key:` line and its block. */
function deleteKey(doc: Lines, key: string): boolean {
  const i = indexOfKey(doc, key);
  if (i < 0) return false;
  const base = indent(doc.lines[i] ?? '');
  let end = i + 1;
  while (end < doc.lines.length && (!isContent(doc.lines[end] ?? '') || indent(doc.lines[end] ?? '') > base)) end++;
  doc.lines.splice(i, end - i);
  return true;
}

/** Appends a line at the end of the `spec:` block (two spaces in), after anything another operator changed. */
function addToSpec(doc: Lines, line: string): boolean {
  const i = indexOfKey(doc, 'spec');
  if (i < 0) return false;
  let end = i + 1;
  while (end < doc.lines.length && (!isContent(doc.lines[end] ?? '') || indent(doc.lines[end] ?? '') > 0)) end++;
  doc.lines.splice(end, 0, `  ${line}`);
  return true;
}

/** Each operator breaks the document for sure; it returns a description, or undefined when it did not apply. */
const OPERATORS: Array<(doc: Lines, rng: Rng) => string | undefined> = [
  // deletions of required fields
  (doc, rng) => {
    const key = pick(rng, ['apiVersion', 'kind', 'name', 'regions', 'remove']);
    return deleteKey(doc, key) ? `delete ${key}` : undefined;
  },
  // type changes
  (doc, rng) => {
    const [key, value] = pick(rng, [
      ['regions', '42'], ['regions', 'cn-hangzhou'], ['regions', '[]'], ['regions', '[Mars]'], ['mode', '[enforce]'], ['mode', 'sometimes'],
      ['schedule', '5'], ['schedule', '{ every: often }'], ['schedule', '{ every: 0s }'], ['apiVersion', '2'], ['kind', '[TagPolicy]'],
      ['remove', 'everything'], ['remove', '{ all: maybe }'], ['remove', '{ keys: [] }'], ['metadata', '[a, b]'], ['name', 'Not_A_Name!'],
      ['limits', '{ maxRemovalsPerRun: lots }'], ['limits', '{ maxRemovalsPerRun: -3 }'], ['exemptions', '{ until: tomorrow }'],
      ['selector', '[]'], ['keep', '7'], ['spec', 'null'],
    ] as const);
    return setValue(doc, key, value) ? `${key}: ${value}` : undefined;
  },
  // bad regexes and patterns
  (doc, rng) => {
    const regex = pick(rng, ['"/([unclosed/"', '"/[z-a]/"', '"/(?<=a+)*(/"', '"/a{2,1}/"', '"/*/"']);
    if (setValue(doc, 'keyPatterns', `[${regex}]`)) return `keyPatterns: [${regex}]`;
    return addToSpec(doc, `keep: [${regex}]`) ? `keep: [${regex}]` : undefined;
  },
  // bad keys: unknown fields, reserved or oversized tag keys
  (doc, rng) => {
    const line = pick(rng, [
      'removee: { keys: [owner] }', 'frobnicate: true', 'Mode: enforce', `remove: { keys: ["${'k'.repeat(200)}"] }`,
      'remove: { keys: [""] }', 'schedule: { every: 10m, cron: "* * * * *", at: noon }',
    ]);
    return addToSpec(doc, line) ? `spec += ${line.slice(0, 40)}` : undefined;
  },
  // garbage bytes: a line opening a flow collection or a quote at the top level, with binary junk in it
  (doc, rng) => {
    const at = 1 + Math.floor(rng() * Math.max(1, doc.lines.length - 1));
    const opener = pick(rng, ['{', '[', '"', '- ', '\t']);
    // Any byte but line breaks, '#' (it would start a comment) and quotes (they could close the opener).
    const junk = Array.from({ length: 4 + Math.floor(rng() * 12) }, () => {
      const b = Math.floor(rng() * 256);
      return String.fromCharCode([10, 13, 35, 34, 39].includes(b) ? 1 : b);
    }).join('');
    doc.lines.splice(at, 0, `${opener}${junk}: ]`);
    return `garbage at line ${at + 1}`;
  },
];

/**
 * `count` mutated files, each one document of the given policy texts, renamed `mut-NNNN` and set to dryRun first (so
 * none can shadow or act as a good policy), then broken by 1-3 operators.
 */
export function mutatePolicies(sources: ReadonlyArray<{ file: string; text: string }>, count: number, rng: Rng): MutatedPolicy[] {
  // One document per mutated file, so that every file is bad as a whole.
  const documents = sources.flatMap((s) => s.text.split(/^---\s*$/m).filter((d) => /^kind:/m.test(d)));
  const out: MutatedPolicy[] = [];
  for (let n = 0; n < count; n++) {
    const name = `mut-${String(n).padStart(4, '0')}`;
    const text = pick(rng, documents).replace(/^(\s{2}name:\s*).*$/m, `$1${name}`).replace(/^(\s*mode:\s*).*$/m, '$1dryRun');
    const lines: Lines = { lines: text.split('\n') };
    const mutations: string[] = [];
    const wanted = 1 + Math.floor(rng() * 3);
    for (let tries = 0; mutations.length < wanted && tries < 20; tries++) {
      const applied = pick(rng, OPERATORS)(lines, rng);
      if (applied) mutations.push(applied);
    }
    out.push({ file: `${name}.yaml`, text: lines.lines.join('\n'), mutations });
  }
  return out;
}

// ---- job payloads

/** One malformed job: where it goes, what it carries, and what its failedReason must name. */
export interface BadJob {
  queue: 'untag' | 'scan';
  /** The region whose untag queue gets the job. */
  region: string;
  jobId: string;
  data: unknown;
  /** A field name (or `(payload)`) the failedReason must contain. */
  mentions: string;
  what: string;
}

/** A valid untag job for resources that do not exist, to mutate. */
function goodUntagJob(n: number, region: string): Record<string, unknown> {
  return {
    v: 1, batchId: `tw-bad-${n}`, policy: 'api', region, runId: 'chaos-bad-input', resourceIds: [`pcc-chaos-missing-${n}`],
    tagKeys: ['tmp-debug'], all: false, source: 'api', dryRun: true, reason: 'chaos bad input',
  };
}

const UNTAG_MUTATIONS: Array<(job: Record<string, unknown>, rng: Rng) => { mentions: string; what: string; data?: unknown }> = [
  (job, rng) => {
    const field = pick(rng, ['v', 'batchId', 'policy', 'region', 'runId', 'resourceIds', 'tagKeys', 'all', 'source', 'dryRun']);
    delete job[field];
    return { mentions: field, what: `without ${field}` };
  },
  (job, rng) => {
    const [field, value] = pick(rng, [
      ['v', 2], ['v', '1'], ['batchId', 12], ['batchId', 'has space'], ['batchId', ''], ['batchId', '123456'], ['batchId', 'x'.repeat(65)],
      ['policy', 'UPPER'], ['policy', 7], ['region', 'mars-1'], ['region', null], ['runId', ''], ['runId', 'r'.repeat(200)],
      ['resourceIds', 'pcc-a'], ['resourceIds', []], ['resourceIds', ['bad id!']], ['resourceIds', Array.from({ length: 21 }, (_, i) => `pcc-${i}x`)],
      ['resourceIds', ['pcc-dup', 'pcc-dup']], ['tagKeys', ['acs:system']], ['tagKeys', ['k'.repeat(200)]], ['tagKeys', 'owner'],
      ['tagKeys', Array.from({ length: 21 }, (_, i) => `key-${i}`)], ['tagKeys', []], ['all', 'yes'], ['source', 'cli'], ['dryRun', 1],
      ['reason', 'r'.repeat(600)], ['carried', { 'bad id!': ['k'] }], ['carried', 'owner'],
    ] as const);
    job[field] = value;
    return { mentions: field, what: `${field} = ${JSON.stringify(value).slice(0, 40)}` };
  },
  (job) => {
    job['all'] = true;
    return { mentions: 'tagKeys', what: 'all with tagKeys' };
  },
  (job, rng) => {
    const field = pick(rng, ['extra', 'resourceId', 'tag_keys', '__proto__x']);
    job[field] = 1;
    return { mentions: field, what: `unknown field ${field}` };
  },
  (_job, rng) => {
    const data = pick(rng, [null, 42, 'a string', [1, 2, 3], true, []]);
    return { mentions: '(payload)', what: `payload ${JSON.stringify(data)}`, data };
  },
];

/** A valid scan job whose policy is dry-run and selects nothing real, to mutate. */
function goodScanJob(n: number, region: string): Record<string, unknown> {
  return {
    v: 1,
    policy: {
      apiVersion: 'tagwarden/v1', kind: 'TagPolicy', metadata: { name: `chaos-bad-scan-${n}` },
      spec: { regions: [region], selector: { resourceIds: [`pcc-chaos-missing-${n}`] }, remove: { keys: ['tmp-debug'] }, mode: 'dryRun' },
    },
    region, trigger: 'api',
  };
}

const SCAN_MUTATIONS: Array<(job: Record<string, unknown>, rng: Rng) => { mentions: string; what: string }> = [
  (job, rng) => {
    const field = pick(rng, ['v', 'policy', 'region', 'trigger']);
    delete job[field];
    return { mentions: field, what: `scan without ${field}` };
  },
  (job, rng) => {
    const [field, value] = pick(rng, [['region', 'mars-1'], ['trigger', 'cron'], ['runId', ''], ['policy', 'a string'], ['v', 0], ['extra', true]] as const);
    job[field] = value;
    return { mentions: field, what: `scan ${field} = ${JSON.stringify(value)}` };
  },
  (job, rng) => {
    const policy = job['policy'] as { spec: Record<string, unknown> };
    const [field, value] = pick(rng, [['regions', 5], ['remove', 'all'], ['mode', 'loud'], ['schedule', { every: 'often' }], ['keep', ['/([/']]] as const);
    policy.spec[field] = value;
    return { mentions: `spec.${field}`, what: `scan policy spec.${field} = ${JSON.stringify(value)}` };
  },
];

/** `count` malformed jobs, about one in ten for the scan queue, spread over `regions`. */
export function badJobs(count: number, regions: readonly string[], rng: Rng): BadJob[] {
  const out: BadJob[] = [];
  for (let n = 0; n < count; n++) {
    const region = pick(rng, regions);
    const jobId = `bad-${n}`;
    if (n % 10 === 9) {
      const job = goodScanJob(n, region);
      const m = pick(rng, SCAN_MUTATIONS)(job, rng);
      out.push({ queue: 'scan', region, jobId, data: job, mentions: m.mentions, what: m.what });
      continue;
    }
    const job = goodUntagJob(n, region);
    const m = pick(rng, UNTAG_MUTATIONS)(job, rng);
    out.push({ queue: 'untag', region, jobId, data: 'data' in m ? m.data : job, mentions: m.mentions, what: m.what });
  }
  // A valid payload under a jobId that is not its batchId is refused too (the jobId is the dedup key).
  if (count > 0) {
    const region = pick(rng, regions);
    out[count - 1] = { queue: 'untag', region, jobId: `bad-${count - 1}`, data: goodUntagJob(count - 1, region), mentions: 'jobId', what: 'jobId differs from batchId' };
  }
  return out;
}

// ---- API requests

/** One malformed API request and what its answer must say. */
export interface BadRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  contentType?: string;
  body?: string | Buffer;
  /** Accepted statuses (all 4xx). */
  statuses: number[];
  /** A field name the `problems` must contain, when the request was valid JSON with a bad field. */
  mentions?: string;
  what: string;
}

function goodUntagRequest(n: number): Record<string, unknown> {
  return { region: 'cn-hangzhou', resourceIds: [`pcc-chaos-api-${n}`], tagKeys: ['tmp-debug'], reason: 'chaos bad request', dryRun: true };
}

const REQUEST_MUTATIONS: Array<(body: Record<string, unknown>, rng: Rng) => { mentions: string; what: string }> = [
  (body, rng) => {
    const field = pick(rng, ['region', 'resourceIds', 'reason']);
    delete body[field];
    return { mentions: field, what: `without ${field}` };
  },
  (body, rng) => {
    const [field, value] = pick(rng, [
      ['region', 'mars-1'], ['region', 7], ['resourceIds', []], ['resourceIds', 'pcc-a'], ['resourceIds', ['bad id!']], ['resourceIds', [null]],
      ['tagKeys', ['acs:x']], ['tagKeys', 'owner'], ['tagKeys', [42]], ['reason', ''], ['reason', 'r'.repeat(600)], ['all', 'yes'],
      ['idempotencyKey', '12345'], ['idempotencyKey', 'has space'], ['dryRun', 'no'], ['extra', 1],
    ] as const);
    body[field] = value;
    return { mentions: field, what: `${field} = ${JSON.stringify(value).slice(0, 30)}` };
  },
  (body) => {
    body['all'] = true;
    return { mentions: 'tagKeys', what: 'tagKeys and all' };
  },
  (body) => {
    delete body['tagKeys'];
    return { mentions: 'tagKeys', what: 'neither tagKeys nor all' };
  },
];

/** `count` malformed requests against the /v1 API; `maxBodyBytes` is the daemon's TAGWARDEN_MAX_BODY_BYTES. */
export function badRequests(count: number, maxBodyBytes: number, rng: Rng): BadRequest[] {
  const json = 'application/json';
  const fieldMutation = (n: number): BadRequest => {
    const body = goodUntagRequest(n);
    const m = pick(rng, REQUEST_MUTATIONS)(body, rng);
    return { method: 'POST', path: '/v1/untag', contentType: json, body: JSON.stringify(body), statuses: [400], mentions: m.mentions, what: m.what };
  };
  const makers: Array<(n: number) => BadRequest> = [
    // A bad field in an otherwise good request is the commonest mistake: a third of the requests.
    fieldMutation, fieldMutation, fieldMutation, fieldMutation, fieldMutation, fieldMutation, fieldMutation,
    () => ({ method: 'POST', path: '/v1/untag', contentType: json, body: Buffer.from(Array.from({ length: 1 + Math.floor(rng() * 64) }, () => Math.floor(rng() * 256))), statuses: [400], what: 'garbage bytes' }),
    () => ({ method: 'POST', path: '/v1/untag', contentType: json, body: pick(rng, ['{"region":', '[1,2', '{"a":1}}', 'nul', '{\'a\':1}']), statuses: [400], what: 'broken JSON' }),
    () => ({ method: 'POST', path: '/v1/untag', contentType: json, statuses: [400], what: 'no body' }),
    () => ({ method: 'POST', path: '/v1/untag', contentType: pick(rng, ['text/plain', 'application/x-www-form-urlencoded', 'image/png']), body: 'region=cn-hangzhou', statuses: [415], what: 'wrong content type' }),
    () => ({ method: 'POST', path: '/v1/untag', contentType: json, body: pick(rng, ['[]', '[{}]', '"text"', '{}']), statuses: [400], what: 'not an untag object' }),
    () => ({ method: 'POST', path: '/v1/untag', contentType: json, body: `{"reason":"${'x'.repeat(maxBodyBytes + 16)}"}`, statuses: [413], what: 'body over the limit' }),
    () => ({ method: 'POST', path: '/v1/untag', contentType: json, body: `${'['.repeat(3000)}${']'.repeat(3000)}`, statuses: [400], what: 'deep nesting' }),
    () => ({ method: 'POST', path: '/v1/untag', contentType: json, body: '{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}}}', statuses: [400], what: 'prototype keys' }),
    () => {
      const [query, mentions] = pick(rng, [['state=bogus', 'state'], ['', 'state'], ['state=failed&limit=0', 'limit'], ['state=failed&limit=abc', 'limit'], ['state=failed&limit=5000', 'limit']] as const);
      return { method: 'GET', path: `/v1/jobs${query ? `?${query}` : ''}`, statuses: [400], mentions, what: `jobs ${query}` };
    },
    (n) => ({ method: 'GET', path: `/v1/jobs/${pick(rng, [`missing-${n}`, '%00', '..%2F..%2Fetc', 'x'.repeat(300)])}`, statuses: [400, 404], what: 'unknown job' }),
    (n) => ({ method: 'POST', path: `/v1/jobs/missing-${n}/retry`, statuses: [400, 404], what: 'retry unknown job' }),
    (n) => ({ method: 'POST', path: `/v1/policies/${pick(rng, [`no-such-${n}`, 'UPPER', '%20'])}/scan`, statuses: [404], what: 'scan unknown policy' }),
    () => ({ method: pick(rng, ['PUT', 'DELETE'] as const), path: pick(rng, ['/v1/untag', '/v1/policies', '/v1/nothing']), statuses: [404], what: 'unknown route' }),
  ];
  return Array.from({ length: count }, (_, n) => pick(rng, makers)(n));
}
