import { describe, expect, it } from 'vitest';
import { isPatchbayError } from '@patchbay/core';
import { createDockerClient } from './client.js';
import { DEFAULT_LIMITS, resolveLimits } from '../limits.js';
import { resolveProviderOptions } from './options.js';

const docker = createDockerClient();

describe('resolveLimits', () => {
  it('lets a spec lower limits but never raise them above the operator ones', () => {
    const operator = { ...DEFAULT_LIMITS, memoryBytes: 1000, pids: 50 };
    expect(resolveLimits(operator, { memoryBytes: 500, pids: 5000, cpus: 0.5 })).toEqual({
      ...operator,
      memoryBytes: 500,
      pids: 50,
      cpus: 0.5,
    });
    expect(resolveLimits(operator, undefined)).toEqual(operator);
  });

  it('refuses nonsense limits', () => {
    for (const bad of [{ memoryBytes: 0 }, { pids: -1 }, { cpus: Number.NaN }, { nofile: 1.5 }]) {
      expect(() => resolveLimits(DEFAULT_LIMITS, bad)).toThrow(/must be a positive number/);
    }
  });
});

describe('resolveProviderOptions', () => {
  it('fills in documented defaults and the operator limits', () => {
    const o = resolveProviderOptions({ docker, limits: { pids: 100 } });
    expect(o.limits).toEqual({ ...DEFAULT_LIMITS, pids: 100 });
    expect(o).toMatchObject({
      namespace: 'patchbay',
      warmPoolSize: 1,
      reaperIntervalMs: 60_000,
      maxAgeMs: 21_600_000,
      execServerPath: '/opt/patchbay/bin/pb-execd',
      user: { uid: 1000, gid: 1000, home: '/home/agent' },
    });
    expect(o.workerId).toMatch(/^[A-Za-z0-9_.-]+-\d+$/);
  });

  it('refuses bad options with a sandbox_error', () => {
    expect(() => resolveProviderOptions({ docker, workerId: 'a b' })).toThrow(/workerId/);
    let thrown: unknown;
    try {
      resolveProviderOptions({ docker, warmPoolSize: -1 });
    } catch (err) {
      thrown = err;
    }
    expect(isPatchbayError(thrown, 'sandbox_error')).toBe(true);
  });
});
