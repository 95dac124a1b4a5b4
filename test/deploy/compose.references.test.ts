import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { daemonEnvNames, readRepoFile, readYaml, repoPath } from './tools.js';

interface Healthcheck {
  test: string[];
}
interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: Healthcheck;
  stop_grace_period?: string;
  read_only?: boolean;
}
interface Compose {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const composeText = readRepoFile('docker-compose.yml');
const compose = readYaml('docker-compose.yml') as Compose;
const services = compose.services;

function service(name: string): ComposeService {
  const s = services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
}
/** Resolves `${VAR:-default}` the way compose does when VAR is unset. */
function withDefaults(value: string): string {
  return value.replace(/\$\{(\w+)(?::?-([^}]*))?\}/g, (_m, _name: string, fallback?: string) => fallback ?? '');
}
function flag(args: readonly string[] | undefined, name: string): string | undefined {
  const list = args ?? [];
  const i = list.indexOf(name);
  return i >= 0 ? list[i + 1] : undefined;
}
function seconds(duration: string | undefined): number {
  const m = /^(\d+)(ms|s|m)$/.exec(duration ?? '10s');
  if (!m) throw new Error(`unreadable duration ${String(duration)}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}
/** The container port a `host:container` mapping exposes. */
function containerPorts(s: ComposeService): number[] {
  return (s.ports ?? []).map((p) => Number(p.split(':').pop()));
}

describe('docker-compose.yml', () => {
  it('has the demo services, each with a healthcheck', () => {
    for (const name of ['redis', 'emulator', 'tagwarden', 'prometheus']) {
      expect(service(name).healthcheck?.test.length, `${name} healthcheck`).toBeGreaterThan(0);
    }
  });

  it('runs Redis 7 with AOF, noeviction and a named volume', () => {
    const redis = service('redis');
    expect(redis.image).toMatch(/^redis:7/);
    const command = (redis.command ?? []).join(' ');
    expect(command).toMatch(/--appendonly yes/);
    expect(command).toMatch(/--maxmemory-policy noeviction/);
    const volume = (redis.volumes ?? []).find((v) => v.endsWith(':/data'));
    expect(volume).toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(volume?.split(':')[0]);
  });

  it('builds the emulator and the daemon from deploy/Dockerfile with the repository as context', () => {
    for (const name of ['emulator', 'tagwarden']) {
      const build = service(name).build;
      expect(build, name).toBeDefined();
      const context = repoPath(build?.context ?? '');
      expect(statSync(context).isDirectory()).toBe(true);
      expect(path.relative(repoPath(), context)).toBe('');
      expect(existsSync(path.join(context, build?.dockerfile ?? ''))).toBe(true);
      expect(build?.dockerfile).toBe('deploy/Dockerfile');
    }
    expect(service('emulator').image).toBe(service('tagwarden').image);
  });

  it('mounts only paths that exist, and the policies read-only where the daemon reads them', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const volume of s.volumes ?? []) {
        const [source] = volume.split(':');
        if (!source?.startsWith('.')) {
          expect(Object.keys(compose.volumes ?? {}), `${name}: named volume ${String(source)}`).toContain(source);
          continue;
        }
        expect(existsSync(repoPath(source)), `${name}: ${source}`).toBe(true);
      }
    }
    const daemon = service('tagwarden');
    const policiesDir = flag(daemon.command, '--policies');
    expect(daemon.command?.[0]).toBe('run');
    expect(daemon.volumes).toContain(`./policies:${String(policiesDir)}:ro`);
  });

  it('sets only environment variables the daemon reads, and interpolates only those', () => {
    const known = daemonEnvNames();
    for (const name of ['emulator', 'tagwarden']) {
      const unknown = Object.keys(service(name).environment ?? {}).filter((n) => !known.has(n));
      expect(unknown, name).toEqual([]);
    }
    const interpolated = [...composeText.matchAll(/\$\{(\w+)/g)].map((m) => m[1] ?? '');
    expect(interpolated.length).toBeGreaterThan(0);
    expect(interpolated.filter((n) => !known.has(n))).toEqual([]);
  });

  it('wires the daemon to the redis and emulator services, on the ports they listen on', () => {
    const env = service('tagwarden').environment ?? {};
    const redisUrl = new URL(withDefaults(env.REDIS_URL ?? ''));
    expect(redisUrl.hostname).toBe('redis');
    expect(redisUrl.port || '6379').toBe('6379');

    const endpoint = new URL(withDefaults(env.TAGWARDEN_ENDPOINT ?? ''));
    const emulator = service('emulator');
    expect(emulator.command?.[0]).toBe('emulator');
    expect(endpoint.hostname).toBe('emulator');
    expect(endpoint.port).toBe(flag(emulator.command, '--port'));
    expect(containerPorts(emulator)).toContain(Number(flag(emulator.command, '--port')));
    expect(emulator.healthcheck?.test.join(' ')).toContain(`:${String(flag(emulator.command, '--port'))}/_emulator/health`);

    const httpPort = Number(withDefaults(env.TAGWARDEN_HTTP_PORT ?? '8080'));
    expect(containerPorts(service('tagwarden'))).toContain(httpPort);
    expect(service('tagwarden').healthcheck?.test.join(' ')).toContain(`:${httpPort}/`);

    expect(env.ALIBABA_CLOUD_ACCESS_KEY_ID).toBe('tagwarden-test');
    expect(env.ALIBABA_CLOUD_ECS_METADATA_DISABLED).toBe('true');
  });

  it('starts the daemon only after healthy Redis and emulator, and lets it drain before SIGKILL', () => {
    const daemon = service('tagwarden');
    expect(daemon.depends_on?.redis?.condition).toBe('service_healthy');
    expect(daemon.depends_on?.emulator?.condition).toBe('service_healthy');
    const drainMs = Number(withDefaults(daemon.environment?.TAGWARDEN_DRAIN_TIMEOUT_MS ?? '20000'));
    expect(seconds(daemon.stop_grace_period) * 1000).toBeGreaterThan(drainMs);
    expect(daemon.read_only).toBe(true);
  });

  it('gives the API token a demo-only default that the config accepts', () => {
    const raw = service('tagwarden').environment?.TAGWARDEN_API_TOKEN ?? '';
    expect(raw).toMatch(/^\$\{TAGWARDEN_API_TOKEN:-/);
    const token = withDefaults(raw);
    expect(token).toMatch(/demo/);
    expect(token.length).toBeGreaterThanOrEqual(16);
    expect(composeText).toMatch(/DEMO ONLY/);
  });

  it('points Prometheus at the daemon and at the alert rules it mounts', () => {
    const prometheus = service('prometheus');
    const mount = (prometheus.volumes ?? []).find((v) => v.startsWith('./deploy/prometheus:'));
    expect(mount).toBeDefined();
    const [hostDir, containerDir] = (mount ?? '').split(':');
    const configFlag = (prometheus.command ?? []).find((c) => c.startsWith('--config.file='));
    const configPath = configFlag?.slice('--config.file='.length) ?? '';
    expect(path.posix.dirname(configPath)).toBe(containerDir);
    const config = readYaml(hostDir ?? '', path.posix.basename(configPath)) as {
      rule_files: string[];
      scrape_configs: Array<{ metrics_path?: string; static_configs: Array<{ targets: string[] }> }>;
    };
    for (const file of config.rule_files) expect(existsSync(repoPath(hostDir ?? '', file)), file).toBe(true);
    const targets = config.scrape_configs.flatMap((s) => s.static_configs.flatMap((c) => c.targets));
    const httpPort = service('tagwarden').environment?.TAGWARDEN_HTTP_PORT ?? '8080';
    expect(targets).toContain(`tagwarden:${httpPort}`);
  });

  it('provisions Grafana with the dashboard and the Prometheus service as datasource', () => {
    const grafana = services.grafana;
    if (!grafana) return;
    const datasources = readYaml('deploy', 'grafana', 'provisioning', 'datasources', 'prometheus.yml') as {
      datasources: Array<{ url: string }>;
    };
    expect(datasources.datasources[0]?.url).toBe('http://prometheus:9090');
    expect(containerPorts(service('prometheus'))).toContain(9090);
    expect(grafana.volumes).toContain('./deploy/grafana/tagwarden.json:/var/lib/grafana/dashboards/tagwarden.json:ro');
  });
});

describe('deploy/Dockerfile', () => {
  interface Instruction {
    op: string;
    args: string;
  }
  const instructions: Instruction[] = readRepoFile('deploy', 'Dockerfile')
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const m = /^(\S+)\s+(.*)$/.exec(line);
      return { op: (m?.[1] ?? line).toUpperCase(), args: m?.[2] ?? '' };
    });
  const stageStarts = instructions.flatMap((ins, i) => (ins.op === 'FROM' ? [i] : []));
  const finalStage = instructions.slice(stageStarts.at(-1));
  const stageNamed = (name: string): Instruction[] => {
    const start = instructions.findIndex((ins) => ins.op === 'FROM' && ins.args.endsWith(` AS ${name}`));
    const next = stageStarts.find((i) => i > start) ?? instructions.length;
    return instructions.slice(start, next);
  };

  it('is multi-stage on the official Node 20 image', () => {
    expect(stageStarts.length).toBeGreaterThanOrEqual(2);
    const arg = instructions.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_IMAGE='));
    expect(arg?.args).toMatch(/^NODE_IMAGE=node:20[-.\w]*$/);
    for (const i of stageStarts) expect(instructions[i]?.args).toMatch(/^\$\{NODE_IMAGE\} AS [\w-]+$/);
  });

  it('runs the final stage as a numeric non-root user', () => {
    const users = finalStage.filter((i) => i.op === 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1)?.args ?? '';
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
  });

  it('starts node directly in exec form, so it receives SIGTERM', () => {
    const entrypoint = finalStage.find((i) => i.op === 'ENTRYPOINT');
    const cmd = finalStage.find((i) => i.op === 'CMD');
    const exec = JSON.parse(entrypoint?.args ?? 'null') as unknown;
    expect(Array.isArray(exec)).toBe(true);
    expect((exec as string[])[0]).toBe('node');
    expect((exec as string[])[1]).toBe('dist/cmd/tagwarden.js');
    expect(JSON.parse(cmd?.args ?? 'null')).toEqual(['run', '--policies', '/etc/tagwarden/policies']);
    const healthcheck = finalStage.find((i) => i.op === 'HEALTHCHECK');
    if (healthcheck) expect(healthcheck.args).toMatch(/CMD \[/);
  });

  it('ships only production dependencies and the build output', () => {
    const prodDeps = stageNamed('prod-deps');
    expect(prodDeps.some((i) => i.op === 'RUN' && /npm ci\b.*--omit=dev/.test(i.args))).toBe(true);
    const copies = finalStage.filter((i) => i.op === 'COPY' || i.op === 'ADD');
    const fromStages = copies.map((i) => /--from=(\S+)/.exec(i.args)?.[1]).filter(Boolean);
    expect(fromStages).toContain('prod-deps');
    expect(fromStages).not.toContain('build-deps');
    for (const copy of copies) {
      if (/--from=build\b/.test(copy.args)) expect(copy.args).toMatch(/\/app\/dist\b/);
    }
  });

  it('copies no .env, secrets or credentials, and bakes none into ENV or ARG', () => {
    for (const ins of instructions) {
      if (ins.op === 'COPY' || ins.op === 'ADD') {
        expect(ins.args, ins.args).not.toMatch(/\.env|secret|credential|\.npmrc|\.aliyun|\.alibabacloud|\.pem|\.key\b|id_rsa/i);
      }
      if (ins.op === 'ENV' || ins.op === 'ARG') {
        expect(ins.args, ins.args).not.toMatch(/SECRET|TOKEN|PASSWORD|ACCESS_KEY/i);
      }
    }
    // The build stage copies the whole context, so .dockerignore must keep these out of it.
    const ignored = readRepoFile('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const entry of ['node_modules', 'dist', '.git', 'test/bench/results', '.env', '.env.*']) {
      expect(ignored, `.dockerignore: ${entry}`).toContain(entry);
    }
  });
});
