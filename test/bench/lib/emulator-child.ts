// Entry of an emulator child process: starts the emulator with the options in TW_BENCH_EMULATOR_OPTIONS,
// prints `listening <url>`, and exits on SIGTERM or when the parent goes away.
import { startEmulator, type EmulatorOptions } from '../../../src/emulator/index.js';

const options = JSON.parse(process.env.TW_BENCH_EMULATOR_OPTIONS ?? '{}') as EmulatorOptions;
const emulator = await startEmulator({ ...options, host: '127.0.0.1' });
process.stdout.write(`listening ${emulator.url}\n`);
const stop = (): void => {
  void emulator.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
