import { PatchbayError } from '@patchbay/core';

/** What a task asked for, sorted by how it is found. */
export type RefRequest =
  | { kind: 'head' }
  | { kind: 'sha'; sha: string }
  | { kind: 'abbrev'; prefix: string }
  | { kind: 'name'; name: string };

const MAX_REF_LENGTH = 255;

/**
 * Why a ref is refused, or undefined when it is a plausible branch, tag or commit name.
 * The rules of `git check-ref-format`, plus what keeps a ref from being read as an option or
 * from escaping a refspec: no leading `-`, no `:` and no whitespace.
 */
export function refProblem(ref: string): string | undefined {
  if (ref.length === 0) return 'the ref is empty';
  if (ref.length > MAX_REF_LENGTH) return `the ref is longer than ${MAX_REF_LENGTH} characters`;
  if (ref.startsWith('-')) return 'the ref starts with "-", which git reads as an option';
  if (/[\s\p{Cc}\p{Cf}]/u.test(ref)) return 'the ref contains whitespace or control characters';
  if (/[~^:?*[\\]/.test(ref)) return 'the ref contains one of ~ ^ : ? * [ \\';
  if (ref.includes('..')) return 'the ref contains ".."';
  if (ref.includes('@{') || ref === '@') return 'the ref contains "@{"';
  if (ref.startsWith('/') || ref.endsWith('/') || ref.includes('//')) {
    return 'the ref has an empty path component';
  }
  if (ref.endsWith('.')) return 'the ref ends with "."';
  for (const part of ref.split('/')) {
    if (part.startsWith('.')) return 'a component of the ref starts with "."';
    if (part.endsWith('.lock')) return 'a component of the ref ends with ".lock"';
  }
  return undefined;
}

/**
 * Sorts a requested ref: omitted (or `HEAD`) means the remote's default branch; 40 hex digits a
 * full commit sha; 4 to 39 hex digits a commit abbreviation (looked up locally, then after a
 * full fetch); anything else a branch or tag name, resolved by the remote the way `git fetch`
 * does.
 * @throws PatchbayError `validation_error` (details.reason `invalid_ref`) for a refused ref.
 */
export function parseRef(ref: string | null | undefined): RefRequest {
  if (ref === undefined || ref === null || ref === 'HEAD') return { kind: 'head' };
  const problem = refProblem(ref);
  if (problem !== undefined) {
    throw new PatchbayError('validation_error', `ref refused: ${problem}`, {
      details: { reason: 'invalid_ref', field: 'repo.ref' },
    });
  }
  if (/^[0-9a-f]{40}$/i.test(ref)) return { kind: 'sha', sha: ref.toLowerCase() };
  if (/^[0-9a-f]{4,39}$/i.test(ref)) return { kind: 'abbrev', prefix: ref.toLowerCase() };
  return { kind: 'name', name: ref };
}
