export {
  DEFAULT_REPO_HOSTS,
  RepoUrlPolicy,
  checkRepoUrl,
  checkRepoUrlSyntax,
  compileRepoUrlPolicy,
  defaultResolver,
  type CheckedRepoUrl,
  type HostResolver,
  type RefusedRepoUrl,
  type RepoUrlCheck,
  type RepoUrlPolicyOptions,
  type RepoUrlRefusal,
} from './url-policy.js';
export {
  GitRunner,
  PASSED_ENV,
  pinnedResolveConfig,
  redactSecrets,
  type GitCallOptions,
  type GitProcess,
  type GitResult,
  type GitRunOptions,
  type GitRunnerOptions,
} from './run-git.js';
export {
  acquireFileLock,
  type FileLock,
  type FileLockOptions,
  type LockHolder,
} from './file-lock.js';
export { parseRef, refProblem, type RefRequest } from './refs.js';
export {
  MirrorCache,
  classifyFetchFailure,
  type ArchiveTarget,
  type CheckoutOptions,
  type MirrorCacheOptions,
  type ResolvedCommit,
} from './mirror.js';
export {
  exportTree,
  exportWorkspace,
  type TreeExportOptions,
  type WorkspaceExportOptions,
} from './tree.js';
export type { GitLogger, Mirror } from './types.js';
