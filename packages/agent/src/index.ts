export {
  applyChunks,
  applyPatch,
  formatSummary,
  type ApplyPatchOptions,
  type ApplyPatchResult,
} from './apply-patch/apply.js';
export {
  APPLY_PATCH_ERROR_CODES,
  ApplyPatchError,
  isApplyPatchError,
  type AffectedPaths,
  type ApplyPatchErrorCode,
  type ApplyPatchErrorOptions,
} from './apply-patch/errors.js';
export type { PatchFileKind, PatchFileSystem } from './apply-patch/file-system.js';
export { LocalPatchFileSystem } from './apply-patch/local-file-system.js';
export { MemoryPatchFileSystem } from './apply-patch/memory-file-system.js';
export {
  parsePatch,
  type Hunk,
  type ParsedPatch,
  type UpdateFileChunk,
} from './apply-patch/parser.js';
export { normalizePatchPath } from './apply-patch/paths.js';
