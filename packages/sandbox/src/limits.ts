import { PatchbayError } from '@patchbay/core';
import type { SandboxLimits } from './types.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * The operator defaults when none are given; they match `PATCHBAY_SANDBOX_*` in
 * `@patchbay/core`'s config, which is where a deployment sets them.
 */
export const DEFAULT_LIMITS: Readonly<SandboxLimits> = Object.freeze({
  memoryBytes: 2 * GiB,
  cpus: 1,
  pids: 512,
  nofile: 4096,
  fsizeBytes: 1 * GiB,
  workspaceBytes: 4 * GiB,
  tmpBytes: 512 * MiB,
});

function invalid(message: string): never {
  throw new PatchbayError('sandbox_error', `invalid sandbox options: ${message}`);
}

/** Every given limit positive (CPUs may be fractions, the rest whole numbers). */
export function checkLimits(limits: Partial<SandboxLimits>, what: string): void {
  for (const [key, value] of Object.entries(limits)) {
    if (value === undefined) continue;
    const ok =
      key === 'cpus'
        ? typeof value === 'number' && Number.isFinite(value) && value > 0
        : Number.isSafeInteger(value) && value > 0;
    if (!ok) invalid(`${what}.${key} must be a positive number, got ${String(value)}`);
  }
}

/**
 * A spec's limits: each requested field, clamped to the operator's; missing fields take the
 * operator's. A task can lower its limits, never raise them.
 */
export function resolveLimits(
  operator: SandboxLimits,
  requested: Partial<SandboxLimits> | undefined,
): SandboxLimits {
  checkLimits(requested ?? {}, 'spec.limits');
  const out: SandboxLimits = { ...operator };
  for (const [key, value] of Object.entries(requested ?? {}) as [keyof SandboxLimits, number][]) {
    if (value !== undefined) out[key] = Math.min(value, operator[key]);
  }
  return out;
}

export function sameLimits(a: SandboxLimits, b: SandboxLimits): boolean {
  return (Object.keys(a) as (keyof SandboxLimits)[]).every((k) => a[k] === b[k]);
}
