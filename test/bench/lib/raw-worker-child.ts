// Entry of a raw BullMQ worker process: an empty processor, the baseline of the pipeline-overhead benchmark.
// Settings come from TW_BENCH_RAW_WORKER; it closes on SIGTERM or when the parent goes away.
import { Worker } from 'bullmq';
import { createRedis } from '../../../src/queue/index.js';

const options = JSON.parse(process.env.TW_BENCH_RAW_WORKER ?? '{}') as { redisUrl: string; prefix: string; queue: string; concurrency: number };
const connection = createRedis(options.redisUrl, { connectionName: 'tagwarden-bench-raw' });
const worker = new Worker(options.queue, async () => undefined, {
  connection,
  prefix: options.prefix,
  concurrency: options.concurrency,
  autorun: false,
});
worker.on('error', (err) => process.stderr.write(`raw worker error: ${err.message}\n`));
void worker.run();
await worker.waitUntilReady();
process.stdout.write('running\n');
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void worker
    .close()
    .then(() => connection.quit())
    .finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
