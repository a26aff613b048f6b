import { EMPTY_USAGE } from '@patchbay/core';
import { describe, expect, it } from 'vitest';
import { RuntimeRouter } from './router.js';
import type { AgentOutcome, AgentRunInput, AgentRunner } from '@patchbay/pipeline';

const outcome = (summary: string): AgentOutcome => ({
  summary,
  stopReason: 'completed',
  usage: EMPTY_USAGE,
  transcript: null,
  conversation: [],
});
const named = (name: string): AgentRunner => ({ run: () => Promise.resolve(outcome(name)) });
const input = (runtime: 'patchbay' | 'codex') => ({ runtime }) as AgentRunInput;

describe('RuntimeRouter', () => {
  it('sends each run to the runtime its task asked for, and refuses one it does not have', async () => {
    const router = new RuntimeRouter({ patchbay: named('loop'), codex: named('codex') });
    expect((await router.run(input('codex'))).summary).toBe('codex');
    expect((await router.run(input('patchbay'))).summary).toBe('loop');
    await expect(
      new RuntimeRouter({ patchbay: named('loop') }).run(input('codex')),
    ).rejects.toMatchObject({
      code: 'model_error',
    });
  });
});
