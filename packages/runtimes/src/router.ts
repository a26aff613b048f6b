import { type AgentRuntime, PatchbayError } from '@patchbay/core';
import type { AgentOutcome, AgentRunInput, AgentRunner } from '@patchbay/pipeline';

/** The agent port the pipeline calls: each run goes to the runtime its task asked for. */
export class RuntimeRouter implements AgentRunner {
  constructor(private readonly runtimes: Partial<Record<AgentRuntime, AgentRunner>>) {}

  run(input: AgentRunInput): Promise<AgentOutcome> {
    const runtime = this.runtimes[input.runtime];
    if (runtime === undefined)
      return Promise.reject(
        new PatchbayError(
          'model_error',
          `the ${input.runtime} runtime is not set up on this worker`,
        ),
      );
    return runtime.run(input);
  }
}
