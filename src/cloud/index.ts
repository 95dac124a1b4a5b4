// Owns the VpcPeer client over the official Alibaba SDK, and the one classification of cloud failures.
// Must not know about queues, Redis, metrics or retries: rate limiting and metrics come in as CloudHooks.
export { createCloudClient, type CloudClientOptions } from './cloud-client.js';
export type { SdkCredentialsProvider } from './sdk.js';
export {
  createAccountCredentials, AssumeRoleError,
  type AccountCredentials, type AccountCredentialsOptions, type AccountRole, type AssumeRoleObserver, type AssumeRoleStatus,
} from './assume-role.js';
export { listDirectoryAccounts, type DirectoryAccount, type DirectoryClientOptions } from './directory.js';
export { classifyError, CloudError, CLASSIFICATION, type CloudErrorContext } from './classify-error.js';
export type {
  CloudApi,
  CloudFailure,
  CloudHooks,
  FailureKind,
  ListPeerConnectionsFilter,
  Page,
  TagRequest,
  TagResourcesSelector,
  TagRow,
  UntagRequest,
} from './types.js';
