// Owns wiring: builds every part from AppConfig, starts them in order, stops them in reverse.
// Must not exit the process or parse flags: cmd/ does that.
export { startDaemon, type Daemon } from './daemon.js';
export { runOnce, type OnceOptions, type OnceProgress, type OnceResult } from './once.js';
export { PLAN_EXIT, planExitCode, planPolicies, type PlanOptions, type PlanReport, type PlanResource, type PlanRow } from './plan.js';
export {
  applySavedPlan,
  readSavedPlan,
  refusalsOf,
  savePlan,
  DEFAULT_MAX_PLAN_AGE_MS,
  PLAN_REFUSED_EXIT,
  savedPlanDigest,
  type ApplyOptions,
  type ApplyResult,
  type SavedPlan,
} from './saved-plan.js';
export { createCore, jobOptionsOf, type Core, type RuntimeOptions } from './core.js';
export {
  accountConfig, governedAccounts, loadAccounts, mergedJobInspector, planAccounts, readAccountsFile, runOnceAccounts,
  type AccountRun, type AccountsOnceOptions, type AccountsOnceResult, type AccountsPlanReport,
} from './accounts.js';
