import { describe, expect, it } from 'vitest';
import { audit, createMemoryLogger, redactString, redactValue } from '../../src/logging/index.js';

describe('logging', () => {
  it('removes secret fields, registered secret values, URL passwords and Authorization values', () => {
    const { logger, lines } = createMemoryLogger({ level: 'info', secrets: ['s3cr3t-value'] });
    logger.info('calling', {
      accessKeySecret: 'ak-field-secret',
      headers: { authorization: 'ACS3-HMAC-SHA256 Credential=x,Signature=y' },
      url: 'redis://:pw123@host:6379',
      note: 'the value s3cr3t-value leaked into a message',
      err: new Error('failed with Bearer tok-123 and s3cr3t-value'),
      clientToken: 'tw-abc',
    });
    const text = lines.join('\n');
    for (const leak of ['ak-field-secret', 'Signature=y', 'pw123', 's3cr3t-value', 'tok-123']) expect(text).not.toContain(leak);
    const record = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(record.clientToken).toBe('tw-abc');
    expect(record.message).toBe('calling');
    expect(redactString('redis://user:pw@h', [])).toBe('redis://user:[REDACTED]@h');
  });

  it('shows the signature version setting, which names an algorithm, and still hides a signature', () => {
    expect(redactValue({ signatureVersion: 'v3', signature: 'abc123', cloud: { signatureVersion: 'v2' } }, [])).toEqual({
      signatureVersion: 'v3',
      signature: '[REDACTED]',
      cloud: { signatureVersion: 'v2' },
    });
  });

  it('writes one audit record per batch outcome', () => {
    const { logger, lines } = createMemoryLogger({ level: 'info', secrets: [] });
    audit(logger, {
      policy: 'p',
      region: 'cn-hangzhou',
      batchId: 'tw-1',
      clientToken: 'tw-1',
      resourceIds: ['pcc-1'],
      tagKeys: ['k'],
      all: false,
      dryRun: false,
      attempt: 1,
      requestId: 'req-1',
      outcome: 'succeeded',
      resources: { 'pcc-1': { outcome: 'removed', keys: ['k'] } },
    });
    expect(JSON.parse(lines[0]!)).toMatchObject({ audit: true, message: 'batch outcome', clientToken: 'tw-1', requestId: 'req-1', resources: { 'pcc-1': { outcome: 'removed' } } });
  });
});
