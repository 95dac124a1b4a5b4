// `tagwarden emulator`: serves the local VpcPeer 2022-01-01 emulator until SIGINT/SIGTERM.
// Prints `listening on http://HOST:PORT` once ready; never calls process.exit.
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { API_NAMES, type ApiName } from '../../src/model.js';
import type { EmulatorOptions, EmulatorStateDoc, FaultConfig } from '../../src/emulator/index.js';
import { validateFaults } from '../../src/emulator/faults.js';
import { validateWebhook } from '../../src/emulator/webhook.js';

function integer(name: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

function isApiName(name: string): name is ApiName {
  return (API_NAMES as readonly string[]).includes(name);
}

/** `--quota Action=N`, repeatable. */
function quota(value: string, previous: Partial<Record<ApiName, number>> = {}): Partial<Record<ApiName, number>> {
  const m = /^([A-Za-z]+)=(\d+)$/.exec(value.trim());
  if (!m || !isApiName(m[1] ?? '')) throw new InvalidArgumentError(`expected Action=N with Action one of ${API_NAMES.join(', ')}`);
  return { ...previous, [m[1] as ApiName]: Number(m[2]) };
}

/** `--fault name=value`, repeatable: probabilities, latencyMs, jitterMs, seed, actions=a,b, regions=a,b. */
function fault(value: string, previous: Record<string, unknown> = {}): Record<string, unknown> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected name=value, e.g. serviceUnavailable=0.1 or actions=UnTagResources');
  const name = value.slice(0, eq).trim();
  const raw = value.slice(eq + 1).trim();
  const next = { ...previous, [name]: name === 'actions' || name === 'regions' ? raw.split(',').filter(Boolean) : Number(raw) };
  try {
    validateFaults(next);
  } catch (err) {
    throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
  }
  return next;
}

interface EmulatorFlags {
  port: number;
  host: string;
  generate?: number;
  seed: number;
  regions?: string;
  fixture?: string;
  accessKeyId?: string;
  accessKeySecret?: string;
  quota?: Partial<Record<ApiName, number>>;
  quotaWindowMs?: number;
  fault?: Record<string, unknown>;
  clientTokenTtlMs?: number;
  nonceTtlMs?: number;
  maxCallLog?: number;
  webhookUrl?: string[];
  webhookToken?: string;
  webhookDuplicates?: number;
  webhookActions?: string;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function probability(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError(`${name} must be a number from 0 to 1`);
    return n;
  };
}

async function optionsFrom(flags: EmulatorFlags): Promise<EmulatorOptions> {
  if ((flags.accessKeyId === undefined) !== (flags.accessKeySecret === undefined)) {
    throw new Error('--access-key-id and --access-key-secret go together');
  }
  const regions = flags.regions?.split(',').map((r) => r.trim()).filter(Boolean);
  let fixture: EmulatorStateDoc | undefined;
  if (flags.fixture !== undefined) {
    const doc = JSON.parse(await readFile(flags.fixture, 'utf8')) as unknown;
    if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as EmulatorStateDoc).resources)) {
      throw new Error(`${flags.fixture}: expected {"resources": [...]}`);
    }
    fixture = doc as EmulatorStateDoc;
  }
  return {
    host: flags.host,
    port: flags.port,
    ...(flags.accessKeyId !== undefined && flags.accessKeySecret !== undefined
      ? { credentials: [{ accessKeyId: flags.accessKeyId, accessKeySecret: flags.accessKeySecret }] }
      : {}),
    ...(flags.generate !== undefined
      ? { generate: { count: flags.generate, seed: flags.seed, ...(regions !== undefined && regions.length > 0 ? { regions } : {}) } }
      : {}),
    ...(fixture !== undefined ? { fixture } : {}),
    ...(flags.quota !== undefined ? { quotas: flags.quota } : {}),
    ...(flags.quotaWindowMs !== undefined ? { quotaWindowMs: flags.quotaWindowMs } : {}),
    ...(flags.fault !== undefined ? { faults: validateFaults(flags.fault) as FaultConfig } : {}),
    ...(flags.clientTokenTtlMs !== undefined ? { clientTokenTtlMs: flags.clientTokenTtlMs } : {}),
    ...(flags.nonceTtlMs !== undefined ? { nonceTtlMs: flags.nonceTtlMs } : {}),
    ...(flags.maxCallLog !== undefined ? { maxCallLog: flags.maxCallLog } : {}),
    ...(flags.webhookUrl !== undefined
      ? {
          webhook: validateWebhook({
            urls: flags.webhookUrl,
            ...(flags.webhookToken !== undefined ? { token: flags.webhookToken } : {}),
            ...(flags.webhookDuplicates !== undefined ? { duplicates: flags.webhookDuplicates } : {}),
            ...(flags.webhookActions !== undefined ? { actions: flags.webhookActions.split(',').filter(Boolean) } : {}),
          }),
        }
      : {}),
  };
}

/** The `emulator` subcommand. */
export function emulatorCommand(): Command {
  return new Command('emulator')
    .description('serve a local VpcPeer 2022-01-01 API emulator (signed RPC API + /_emulator/ admin API)')
    .addOption(new Option('--port <port>', 'port to listen on (0 = any free port)').argParser(integer('--port', 0)).default(8790))
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .addOption(new Option('--generate <n>', 'generate a deterministic estate of n peering connections').argParser(integer('--generate', 0)))
    .addOption(new Option('--seed <seed>', 'seed of the generated estate').argParser(integer('--seed', 0)).default(1))
    .option('--regions <a,b>', 'regions of the generated estate (default cn-hangzhou,cn-shanghai,cn-beijing)')
    .option('--fixture <file>', 'load a state document ({"resources": [...]}, the shape of GET /_emulator/state)')
    .option('--access-key-id <id>', 'the accepted AccessKey id (default tagwarden-test)')
    .option('--access-key-secret <secret>', 'its secret (default tagwarden-test-secret)')
    .option('--quota <Action=N>', 'calls per window for an action, per region (repeatable)', quota)
    .addOption(new Option('--quota-window-ms <ms>', 'quota window length').argParser(integer('--quota-window-ms', 1)))
    .option('--fault <name=value>', 'fault injection, e.g. serviceUnavailable=0.05, latencyMs=20, actions=UnTagResources (repeatable)', fault)
    .addOption(new Option('--client-token-ttl-ms <ms>', 'how long ClientToken results are remembered').argParser(integer('--client-token-ttl-ms', 1)))
    .addOption(new Option('--nonce-ttl-ms <ms>', 'how long signature nonces are remembered').argParser(integer('--nonce-ttl-ms', 1)))
    .addOption(new Option('--max-call-log <n>', 'entries kept by /_emulator/calls').argParser(integer('--max-call-log', 0)))
    .option('--webhook-url <url>', 'deliver an ActionTrail CloudEvent per successful TagResources call here (repeatable: used in turn)', collect)
    .option('--webhook-token <token>', 'sent as x-eventbridge-signature-token')
    .addOption(new Option('--webhook-duplicates <p>', 'probability that an event is delivered twice').argParser(probability('--webhook-duplicates')))
    .option('--webhook-actions <a,b>', 'actions that produce events (default TagResources)')
    .action(async (flags: EmulatorFlags) => {
      let options: EmulatorOptions;
      try {
        options = await optionsFrom(flags);
      } catch (err) {
        process.stderr.write(`tagwarden emulator: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 2;
        return;
      }
      const { startEmulator } = await import('../../src/emulator/index.js');
      const emulator = await startEmulator(options);
      const count = options.generate?.count ?? 0;
      process.stdout.write(
        `tagwarden emulator listening on ${emulator.url} (${count + (options.fixture?.resources.length ?? 0)} peering connections)\n`,
      );
      await new Promise<void>((resolve) => {
        const onSignal = (signal: NodeJS.Signals): void => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          process.stdout.write(`tagwarden emulator: ${signal}, closing\n`);
          emulator.close().then(resolve, (err: unknown) => {
            process.stderr.write(`tagwarden emulator: close failed: ${err instanceof Error ? err.message : String(err)}\n`);
            process.exitCode = 1;
            resolve();
          });
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
    });
}
