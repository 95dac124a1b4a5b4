// Preloaded with `node --import` into a measured child: at exit it writes its peak RSS (KiB) to TW_BENCH_RSS_FILE.
// Must not change the child's behaviour otherwise.
import { writeFileSync } from 'node:fs';

const file = process.env.TW_BENCH_RSS_FILE;
if (file) {
  process.on('exit', () => {
    writeFileSync(file, JSON.stringify({ maxRssKb: process.resourceUsage().maxRSS }));
  });
}
