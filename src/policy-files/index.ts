// Owns reading policy files from disk and watching them: the only module that touches policy files.
// Must not validate or interpret policies (that is policy/): it returns texts and read problems.
export { readPolicySources, MAX_POLICY_FILE_BYTES } from './read.js';
export type { PolicySourcesResult } from './read.js';
export { watchPolicySources, sourcesHash } from './watch.js';
export type { PolicyWatcher, WatchOptions } from './watch.js';
