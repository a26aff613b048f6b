import { PatchbayError } from '@patchbay/core';

/**
 * Task ids and artifact names become path segments or key parts, so they are held to a plain
 * alphabet with no leading dot: no `..`, no separators, no hidden files, and no clash with a
 * store's own `.tmp-*` files.
 */
const SAFE_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

export function segment(value: string, field: 'taskId' | 'name'): string {
  if (!SAFE_SEGMENT.test(value)) {
    throw new PatchbayError(
      'validation_error',
      `${field} must be 1-200 characters of A-Z a-z 0-9 . _ - and not start with a dot`,
      { details: { field } },
    );
  }
  return value;
}
