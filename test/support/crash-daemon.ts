// A tagwarden daemon with the scan write hook, for crash tests of a real process: prints every scan write point
// it reaches (a JSON line, message "scan write point") and SIGKILLs itself just before the first write named by
// TW_TEST_CRASH_BEFORE. Without it, it only reports the points (the code's own list, whatever it is today).
// Not a test file: run as `node dist/test/support/crash-daemon.js` with a daemon's environment.
import { loadConfig } from '../../src/config/index.js';
import { startDaemon } from '../../src/runtime/index.js';

const crashBefore = process.env.TW_TEST_CRASH_BEFORE;
const listPageSize = Number(process.env.TW_TEST_LIST_PAGE_SIZE ?? '100');
const daemon = await startDaemon(loadConfig(process.env), {
  listPageSize,
  beforeScanWrite: (point) => {
    // A write to a pipe is synchronous on Linux: the line is out before the kill.
    process.stdout.write(`${JSON.stringify({ message: 'scan write point', point })}\n`);
    if (point === crashBefore) process.kill(process.pid, 'SIGKILL');
  },
});
process.once('SIGTERM', () => {
  void daemon.close().finally(() => process.exit(0));
});
