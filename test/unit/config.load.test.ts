import { describe, expect, it } from 'vitest';
import { CONFIG_ENV_NAMES, describeConfig, loadConfig } from '../../src/config/index.js';
import { TagwardenError } from '../../src/errors.js';

describe('config', () => {
  it('has documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      queuePrefix: 'tagwarden',
      endpoint: 'https://vpcpeer.aliyuncs.com',
      quotaFraction: 0.95,
      retryAttempts: 8,
      httpPort: 8080,
      apiOpen: false,
      dryRun: false,
    });
    expect(config.quotas.UnTagResources).toBe(1000);
    expect(config.regions).toContain('cn-hangzhou');
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.quotas)).toBe(true);
  });

  it('reads the environment, and flags win over it', () => {
    const env = { TAGWARDEN_HTTP_PORT: '9000', TAGWARDEN_DRY_RUN: 'true', TAGWARDEN_QUOTA_UNTAGRESOURCES: '50', TAGWARDEN_REGIONS: 'cn-hangzhou, cn-beijing' };
    const config = loadConfig(env, { httpPort: 9100 });
    expect(config.httpPort).toBe(9100);
    expect(config.dryRun).toBe(true);
    expect(config.quotas.UnTagResources).toBe(50);
    expect(config.quotas.ListTagResources).toBe(3000);
    expect(config.regions).toEqual(['cn-hangzhou', 'cn-beijing']);
  });

  it('packs by union unless TAGWARDEN_PACKING says exact, and names the choices when it is wrong', () => {
    expect(loadConfig({}).packing).toBe('union');
    expect(loadConfig({ TAGWARDEN_PACKING: 'exact' }).packing).toBe('exact');
    expect(() => loadConfig({ TAGWARDEN_PACKING: 'greedy' })).toThrow(/TAGWARDEN_PACKING.*union.*exact/s);
  });

  it('lists every problem at once, by variable name', () => {
    let error: unknown;
    try {
      loadConfig({ TAGWARDEN_HTTP_PORT: 'eighty', TAGWARDEN_QUOTA_FRACTION: '1.5', REDIS_URL: 'http://x', TAGWARDEN_REGIONS: 'mars-1', TAGWARDEN_API_TOKEN: 'short' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TagwardenError);
    const { code, message } = error as TagwardenError;
    expect(code).toBe('CONFIG_INVALID');
    for (const name of ['TAGWARDEN_HTTP_PORT', 'TAGWARDEN_QUOTA_FRACTION', 'REDIS_URL', 'TAGWARDEN_REGIONS', 'TAGWARDEN_API_TOKEN']) {
      expect(message).toContain(name);
    }
    expect(message).not.toContain('short');
  });

  it('collects secrets for redaction and never shows them in the loggable view', () => {
    const config = loadConfig({
      REDIS_URL: 'redis://:hunter2-redis-pass@redis:6379',
      TAGWARDEN_API_TOKEN: 'api-token-0123456789abcdef',
      ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'ak-secret-value',
    });
    expect(config.secrets).toEqual(expect.arrayContaining(['hunter2-redis-pass', 'api-token-0123456789abcdef', 'ak-secret-value']));
    const view = JSON.stringify(describeConfig(config));
    for (const secret of config.secrets) expect(view).not.toContain(secret);
    expect(view).toContain('"apiToken":"set"');
  });

  it('refuses braces in the queue prefix with an accounts file (each account is its own hash tag), keeps them without', () => {
    expect(loadConfig({ TAGWARDEN_QUEUE_PREFIX: '{tagwarden}' }).queuePrefix).toBe('{tagwarden}');
    expect(() => loadConfig({ TAGWARDEN_QUEUE_PREFIX: '{tagwarden}', TAGWARDEN_ACCOUNTS_FILE: '/etc/tagwarden/accounts.yaml' }))
      .toThrow(/TAGWARDEN_QUEUE_PREFIX: with TAGWARDEN_ACCOUNTS_FILE, no braces/);
    expect(loadConfig({ TAGWARDEN_QUEUE_PREFIX: 'tagwarden', TAGWARDEN_ACCOUNTS_FILE: '/etc/tagwarden/accounts.yaml' }).queuePrefix).toBe('tagwarden');
  });

  it('names every variable it reads', () => {
    expect(CONFIG_ENV_NAMES).toEqual(expect.arrayContaining(['REDIS_URL', 'TAGWARDEN_ENDPOINT', 'TAGWARDEN_QUOTA_UNTAGRESOURCES']));
  });
});
