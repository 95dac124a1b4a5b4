import { describe, expect, it } from 'vitest';
import { checkTagKey } from '../../src/emulator/params.js';
import { codePointLength, tagKeyProblem } from '../../src/model.js';
import { compilePolicyDocument } from '../../src/policy/index.js';
import { UntagJobSchema } from '../../src/queue/index.js';

const EMOJI_KEY = 'tmp-' + '😀'.repeat(100); // 104 code points, 204 UTF-16 units
const AT_LIMIT = '😀'.repeat(128);
const OVER = '😀'.repeat(129);

const job = (tagKeys: string[]) => ({
  v: 1, batchId: 'tw-codepoints-1', policy: 'p', region: 'cn-hangzhou', runId: 'r', resourceIds: ['pcc-1'], tagKeys, all: false, source: 'api', dryRun: false,
});

describe('tag key length in code points, as the API counts', () => {
  it('codePointLength counts surrogate pairs once and lone surrogates as one', () => {
    expect(codePointLength(EMOJI_KEY)).toBe(104);
    expect(EMOJI_KEY.length).toBe(204);
    expect(codePointLength('a\ud800b\udc00')).toBe(4);
    expect(codePointLength('')).toBe(0);
  });

  it('the model rule, the job schema, the policy checks and the emulator agree', () => {
    for (const [key, ok] of [[EMOJI_KEY, true], [AT_LIMIT, true], [OVER, false], ['x'.repeat(128), true], ['x'.repeat(129), false]] as const) {
      expect(tagKeyProblem(key) === undefined, key).toBe(ok);
      expect(UntagJobSchema.safeParse(job([key])).success, key).toBe(ok);
      const policy = compilePolicyDocument(
        { apiVersion: 'tagwarden/v1', kind: 'TagPolicy', metadata: { name: 'p' }, spec: { resourceType: 'PeerConnection', regions: ['cn-hangzhou'], remove: { keys: [key] }, selector: { tags: { [key]: '*' } } } },
        new Date('2026-12-01T12:00:00Z'),
      );
      expect(policy.policy !== undefined, key).toBe(ok);
      if (ok) expect(() => checkTagKey(key, false)).not.toThrow();
      else expect(() => checkTagKey(key, false)).toThrow(/longer than 128/);
    }
    expect(tagKeyProblem(OVER)).toBe('is 129 characters long; at most 128 are allowed');
  });
});
