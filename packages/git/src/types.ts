import type { GitRunner } from './run-git.js';

/** A pino-compatible logger, or anything shaped like one (tests pass their own). */

/** One repository's bare mirror; what the export functions work on. */
export interface Mirror {
  /** The normalised repository URL. */
  readonly url: string;
  /** The bare repository. */
  readonly gitDir: string;
  /** Where workspace exports (pack + index per commit) are cached; shared by all mirrors. */
  readonly exportsDir: string;
  /** The runner every git command on this mirror goes through. */
  readonly git: GitRunner;
  /** How many workspace exports the cache keeps. */
  readonly maxCachedExports: number;
}
