import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { beforeAll, describe, expect, it } from 'vitest';
import { daemonEnvNames, findObject, kustomize, type K8sObject } from './tools.js';

type Model = new (data: never) => { validate(): void };
const MODELS: Record<string, Model> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Secret': Secret,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } };
}
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: EnvVar[];
  ports?: Array<{ name?: string; containerPort: number }>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    privileged?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
    seccompProfile?: { type: string };
  };
  volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string; readOnly?: boolean }>;
}
interface Volume {
  name: string;
  configMap?: { name: string };
  secret?: { secretName: string };
  emptyDir?: Record<string, unknown>;
  projected?: {
    sources: Array<{ serviceAccountToken?: { audience?: string; expirationSeconds?: number; path: string } }>;
  };
}
interface PodSpec {
  serviceAccountName?: string;
  terminationGracePeriodSeconds?: number;
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    fsGroup?: number;
    seccompProfile?: { type: string };
  };
  containers: Container[];
  volumes?: Volume[];
  topologySpreadConstraints?: unknown[];
  affinity?: { podAntiAffinity?: unknown };
}
interface Workload {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    strategy?: { rollingUpdate?: { maxUnavailable?: number | string; maxSurge?: number | string } };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}

const POLICIES_DIR = '/etc/tagwarden/policies';
const RRSA_TOKEN_FILE = '/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token';

function workload(o: K8sObject): Workload {
  return o as unknown as Workload;
}
function daemon(objects: readonly K8sObject[]): { pod: PodSpec; container: Container; deployment: Workload } {
  const deployment = workload(findObject(objects, 'Deployment', 'tagwarden'));
  const container = deployment.spec.template.spec.containers.find((c) => c.name === 'tagwarden');
  if (!container) throw new Error('Deployment tagwarden has no container named tagwarden');
  return { pod: deployment.spec.template.spec, container, deployment };
}
function envOf(container: Container): Map<string, EnvVar> {
  return new Map((container.env ?? []).map((e) => [e.name, e]));
}
function matches(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}
function secretValue(objects: readonly K8sObject[], name: string, key: string): string | undefined {
  const secret = findObject(objects, 'Secret', name) as K8sObject & {
    data?: Record<string, string>;
    stringData?: Record<string, string>;
  };
  if (secret.stringData?.[key] !== undefined) return secret.stringData[key];
  const encoded = secret.data?.[key];
  return encoded === undefined ? undefined : Buffer.from(encoded.replace(/\s/g, ''), 'base64').toString('utf8');
}
function ms(value: string | undefined, fallback: number): number {
  return value === undefined ? fallback : Number(value);
}

describe.each(['ack', 'local'])('kustomize overlay %s', (overlay) => {
  let objects: K8sObject[];

  beforeAll(() => {
    objects = kustomize(`deploy/kubernetes/overlays/${overlay}`);
  });

  it('builds, and every object validates against its Kubernetes or Prometheus Operator schema', () => {
    expect(objects.length).toBeGreaterThan(8);
    const problems: string[] = [];
    for (const o of objects) {
      const model = MODELS[`${o.apiVersion}/${o.kind}`];
      if (!model) {
        problems.push(`${o.apiVersion}/${o.kind} ${o.metadata.name}: no schema registered in this test`);
        continue;
      }
      // Current kustomize folds long base64 values over several lines; the API server's decoder skips the
      // line breaks, the schema's "byte" format does not.
      const data = (o as { data?: Record<string, unknown> }).data;
      const unfolded =
        o.kind === 'Secret' && data
          ? { ...o, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, String(v).replace(/\s/g, '')])) }
          : o;
      try {
        new model(unfolded as never).validate();
      } catch (error) {
        problems.push(`${o.kind}/${o.metadata.name}: ${(error as Error).message}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('schema validation does reject a broken object (control)', () => {
    const broken = structuredClone(findObject(objects, 'Deployment', 'tagwarden')) as unknown as Workload;
    (broken.spec as unknown as Record<string, unknown>).replicas = 'two';
    expect(() => new Deployment(broken as never).validate()).toThrow();
  });

  it('puts every namespaced object in the tagwarden namespace', () => {
    for (const o of objects) {
      if (o.kind === 'Namespace') continue;
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('tagwarden');
    }
    findObject(objects, 'Namespace', 'tagwarden');
  });

  it('runs every container non-root, read-only, without privileges, under RuntimeDefault seccomp', () => {
    const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet').map(workload);
    expect(workloads.length).toBeGreaterThan(0);
    for (const w of workloads) {
      const pod = w.spec.template.spec;
      expect(pod.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
      for (const c of pod.containers) {
        const nonRoot = c.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot;
        const uid = c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
        expect(nonRoot, c.name).toBe(true);
        expect(typeof uid === 'number' && uid > 0, `${c.name} numeric non-zero UID`).toBe(true);
        expect(c.securityContext?.allowPrivilegeEscalation, c.name).toBe(false);
        expect(c.securityContext?.readOnlyRootFilesystem, c.name).toBe(true);
        expect(c.securityContext?.privileged ?? false, c.name).toBe(false);
        expect(c.securityContext?.capabilities?.drop, c.name).toContain('ALL');
        expect(c.securityContext?.capabilities?.add ?? [], c.name).toEqual([]);
        expect(c.resources?.requests?.cpu && c.resources.requests.memory, `${c.name} requests`).toBeTruthy();
        expect(c.resources?.limits?.memory, `${c.name} memory limit`).toBeTruthy();
      }
    }
  });

  it('gives the daemon probes, limits, /tmp, a grace period above the drain bound, and a rolling update that keeps capacity', () => {
    const { pod, container, deployment } = daemon(objects);
    const httpPort = container.ports?.find((p) => p.name === 'http')?.containerPort;
    expect(httpPort).toBe(Number(envOf(container).get('TAGWARDEN_HTTP_PORT')?.value ?? 8080));
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.resources?.limits?.cpu).toBeTruthy();

    const drainMs = ms(envOf(container).get('TAGWARDEN_DRAIN_TIMEOUT_MS')?.value, 20_000);
    const preStop = container.lifecycle?.preStop?.exec?.command;
    const preStopMs = preStop?.[0] === 'sleep' ? Number(preStop[1]) * 1000 : 0;
    expect((pod.terminationGracePeriodSeconds ?? 30) * 1000).toBeGreaterThan(drainMs + preStopMs + 5_000);

    const tmp = container.volumeMounts?.find((m) => m.mountPath === '/tmp');
    expect(pod.volumes?.find((v) => v.name === tmp?.name)?.emptyDir).toBeDefined();

    expect(deployment.spec.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
    expect(matches(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels)).toBe(true);
  });

  it('mounts the generated policies ConfigMap as a whole directory (no subPath) where the daemon reads it', () => {
    const { pod, container } = daemon(objects);
    const args = container.args ?? [];
    expect(args[0]).toBe('run');
    expect(args[args.indexOf('--policies') + 1]).toBe(POLICIES_DIR);
    const mount = container.volumeMounts?.find((m) => m.mountPath === POLICIES_DIR);
    expect(mount).toBeDefined();
    expect(mount?.subPath).toBeUndefined();
    expect(mount?.readOnly).toBe(true);
    const volume = pod.volumes?.find((v) => v.name === mount?.name);
    expect(volume?.configMap?.name).toBeTruthy();
    findObject(objects, 'ConfigMap', volume?.configMap?.name ?? '');
    for (const c of pod.containers) for (const m of c.volumeMounts ?? []) expect(m.subPath, m.name).toBeUndefined();
  });

  it('resolves every Secret and ConfigMap reference to an object and key in the build', () => {
    const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet').map(workload);
    for (const w of workloads) {
      for (const c of w.spec.template.spec.containers) {
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) expect(secretValue(objects, ref.name, ref.key), `${c.name} ${e.name}`).toBeDefined();
        }
      }
      for (const v of w.spec.template.spec.volumes ?? []) {
        if (v.configMap) findObject(objects, 'ConfigMap', v.configMap.name);
        if (v.secret) findObject(objects, 'Secret', v.secret.secretName);
      }
    }
  });

  it('sets only environment variables the daemon reads', () => {
    const known = daemonEnvNames();
    const { container } = daemon(objects);
    const unknown = (container.env ?? []).map((e) => e.name).filter((n) => !known.has(n));
    expect(unknown).toEqual([]);
    expect(envOf(container).get('ALIBABA_CLOUD_ECS_METADATA_DISABLED')?.value).toBe('true');
  });

  it('has a Service, a PodDisruptionBudget (minAvailable 1) and a ServiceMonitor that select the daemon pods', () => {
    const { deployment, container } = daemon(objects);
    const podLabels = deployment.spec.template.metadata.labels;
    const service = findObject(objects, 'Service', 'tagwarden') as K8sObject & {
      spec: { selector: Record<string, string>; ports: Array<{ name: string; port: number; targetPort: string | number }> };
    };
    expect(matches(service.spec.selector, podLabels)).toBe(true);
    const http = service.spec.ports.find((p) => p.name === 'http');
    expect(http?.targetPort).toBe('http');
    expect(container.ports?.some((p) => p.name === 'http')).toBe(true);

    const pdb = findObject(objects, 'PodDisruptionBudget', 'tagwarden') as K8sObject & {
      spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } };
    };
    expect(pdb.spec.minAvailable).toBe(1);
    expect(matches(pdb.spec.selector.matchLabels, podLabels)).toBe(true);

    const monitor = findObject(objects, 'ServiceMonitor', 'tagwarden') as K8sObject & {
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string }> };
    };
    expect(matches(monitor.spec.selector.matchLabels, service.metadata.labels)).toBe(true);
    expect(monitor.spec.endpoints).toContainEqual(expect.objectContaining({ port: 'http', path: '/metrics' }));
  });

  it('has a NetworkPolicy that admits only the HTTP port and lets out only DNS, Redis and the API', () => {
    const { deployment } = daemon(objects);
    const policy = findObject(objects, 'NetworkPolicy', 'tagwarden') as K8sObject & {
      spec: {
        podSelector: { matchLabels: Record<string, string> };
        policyTypes: string[];
        ingress: Array<{ ports?: Array<{ port: number; protocol: string }> }>;
        egress: Array<{ ports?: Array<{ port: number; protocol: string }> }>;
      };
    };
    expect(matches(policy.spec.podSelector.matchLabels, deployment.spec.template.metadata.labels)).toBe(true);
    expect(policy.spec.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
    const ingressPorts = policy.spec.ingress.flatMap((r) => {
      expect(r.ports, 'every ingress rule names its ports').toBeDefined();
      return (r.ports ?? []).map((p) => p.port);
    });
    expect(new Set(ingressPorts)).toEqual(new Set([8080]));
    const egressPorts = new Set(
      policy.spec.egress.flatMap((r) => {
        expect(r.ports, 'every egress rule names its ports').toBeDefined();
        return (r.ports ?? []).map((p) => p.port);
      }),
    );
    const allowed = overlay === 'ack' ? [53, 6379, 443] : [53, 6379, 8790];
    expect([...egressPorts].sort((a, b) => a - b)).toEqual([...allowed].sort((a, b) => a - b));
  });

  if (overlay === 'ack') {
    it('configures RRSA: role annotation, the three OIDC variables, and the projected STS token', () => {
      const { pod, container, deployment } = daemon(objects);
      expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
      expect((pod.topologySpreadConstraints?.length ?? 0) > 0 || pod.affinity?.podAntiAffinity).toBeTruthy();
      const env = envOf(container);
      expect(env.get('TAGWARDEN_ENDPOINT')?.value).toBe('https://vpcpeer.aliyuncs.com');
      expect(env.get('ALIBABA_CLOUD_ROLE_ARN')?.value).toMatch(/^acs:ram::[^:]+:role\/[\w.@-]+$/);
      expect(env.get('ALIBABA_CLOUD_OIDC_PROVIDER_ARN')?.value).toMatch(/^acs:ram::[^:]+:oidc-provider\/[\w.-]+$/);
      expect(env.get('ALIBABA_CLOUD_OIDC_TOKEN_FILE')?.value).toBe(RRSA_TOKEN_FILE);
      expect(env.has('ALIBABA_CLOUD_ACCESS_KEY_ID')).toBe(false);
      expect(env.has('ALIBABA_CLOUD_ACCESS_KEY_SECRET')).toBe(false);

      const mount = container.volumeMounts?.find((m) => RRSA_TOKEN_FILE.startsWith(m.mountPath + '/'));
      expect(mount?.readOnly).toBe(true);
      const volume = pod.volumes?.find((v) => v.name === mount?.name);
      const token = volume?.projected?.sources.find((s) => s.serviceAccountToken)?.serviceAccountToken;
      expect(token).toEqual({ audience: 'sts.aliyuncs.com', expirationSeconds: 3600, path: 'token' });
      expect(`${mount?.mountPath}/${token?.path}`).toBe(RRSA_TOKEN_FILE);
      // Without fsGroup the non-root user cannot read the projected token.
      expect(pod.securityContext?.fsGroup).toBe(pod.securityContext?.runAsUser);

      const account = findObject(objects, 'ServiceAccount', pod.serviceAccountName ?? '');
      const role = account.metadata.annotations?.['pod-identity.alibabacloud.com/role-name'];
      expect(role).toBeTruthy();
      expect(env.get('ALIBABA_CLOUD_ROLE_ARN')?.value?.endsWith(`:role/${role}`)).toBe(true);
      expect((account as K8sObject & { automountServiceAccountToken?: boolean }).automountServiceAccountToken).toBe(false);
    });
  }

  if (overlay === 'local') {
    it('points the daemon at the in-cluster emulator and a Redis with AOF and noeviction', () => {
      const { container, deployment } = daemon(objects);
      expect(deployment.spec.replicas).toBe(1);
      const endpoint = new URL(envOf(container).get('TAGWARDEN_ENDPOINT')?.value ?? '');
      const emulatorService = findObject(objects, 'Service', endpoint.hostname) as K8sObject & {
        spec: { ports: Array<{ port: number }> };
      };
      expect(emulatorService.spec.ports.map((p) => p.port)).toContain(Number(endpoint.port));
      const emulator = workload(findObject(objects, 'Deployment', 'tagwarden-emulator')).spec.template.spec.containers[0];
      expect(emulator?.image).toBe(container.image);
      const emulatorArgs = emulator?.args ?? [];
      expect(emulatorArgs[0]).toBe('emulator');
      expect(emulatorArgs[emulatorArgs.indexOf('--port') + 1]).toBe(endpoint.port);

      const keyRef = envOf(container).get('ALIBABA_CLOUD_ACCESS_KEY_ID')?.valueFrom?.secretKeyRef;
      expect(keyRef && secretValue(objects, keyRef.name, keyRef.key)).toBe('tagwarden-test');

      const redisUrl = new URL(secretValue(objects, 'tagwarden', 'REDIS_URL') ?? '');
      const redisService = findObject(objects, 'Service', redisUrl.hostname) as K8sObject & {
        spec: { ports: Array<{ port: number }> };
      };
      expect(redisService.spec.ports.map((p) => p.port)).toContain(Number(redisUrl.port));
      const redis = workload(findObject(objects, 'StatefulSet', redisUrl.hostname)).spec.template.spec.containers[0];
      const args = (redis?.args ?? []).join(' ');
      expect(args).toMatch(/--appendonly yes/);
      expect(args).toMatch(/--maxmemory-policy noeviction/);
    });
  }
});
