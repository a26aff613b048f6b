export {
  RepoUrlPolicy,
  checkRepoUrl,
  checkRepoUrlSyntax,
  compileRepoUrlPolicy,
  type CheckedRepoUrl,
  type HostResolver,
  type RefusedRepoUrl,
  type RepoUrlCheck,
  type RepoUrlPolicyOptions,
  type RepoUrlRefusal,
} from './url-policy.js';
export {
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
export { type RefRequest } from './refs.js';
export {
  MirrorCache,
  type ArchiveTarget,
  type CheckoutOptions,
  type MirrorCacheOptions,
  type ResolvedCommit,
} from './mirror.js';
export { type TreeExportOptions, type WorkspaceExportOptions } from './tree.js';
export type { Mirror } from './types.js';
export type { PushRequest, PushResult } from './push.js';
