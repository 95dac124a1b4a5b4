import { describe, expect, it } from 'vitest';
import * as tagwarden from '../../src/index.js';

describe('library surface', () => {
  it('exports the producer and the payload schemas, and validates a request without any connection', () => {
    expect(typeof tagwarden.createProducer).toBe('function');
    expect(tagwarden.untagQueueName('default', 'cn-hangzhou')).toBe('untag-{default}-cn-hangzhou');
    const bad = tagwarden.UntagRequestSchema.safeParse({ region: 'mars-1', resourceIds: [], reason: '' });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['region', 'resourceIds', 'reason']));
    const good = tagwarden.UntagRequestSchema.safeParse({ region: 'cn-hangzhou', resourceIds: ['pcc-1'], all: true, reason: 'x' });
    expect(good.success).toBe(true);
  });
});
