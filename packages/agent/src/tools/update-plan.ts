import { PlanStep } from '@patchbay/core';
import { z } from 'zod';
import { toolParameters } from './schema.js';
import type { Tool } from './types.js';

/** The plan as offered to the model; `PlanStep` is core's, so the event and the tool agree. */
const PlanParameters = z.object({
  explanation: z.string().optional().describe('Why the plan is what it is now (optional).'),
  plan: z
    .array(PlanStep.describe('One step: a short sentence and its status.'))
    .describe('The whole plan, in order; each call replaces the previous plan.'),
});

export const UpdatePlanArgs = PlanParameters.superRefine((args, ctx) => {
  const inProgress = args.plan.filter((step) => step.status === 'in_progress').length;
  if (inProgress > 1) {
    ctx.addIssue({
      code: 'custom',
      path: ['plan'],
      message: `at most one step can be in_progress, got ${inProgress}`,
    });
  }
});
export type UpdatePlanArgs = z.infer<typeof UpdatePlanArgs>;

const DESCRIPTION =
  'Records your plan for the task as a list of steps, each pending, in_progress or completed; at most one step is in_progress at a time. ' +
  'Send the whole plan each time, marking steps completed as you finish them. Use it for tasks of several steps; skip it for simple ones.';

/** The `update_plan` tool: validates the plan and records it as a `plan` event. */
export const updatePlanTool: Tool<UpdatePlanArgs> = {
  definition: {
    name: 'update_plan',
    description: DESCRIPTION,
    parameters: toolParameters(PlanParameters),
  },
  args: UpdatePlanArgs,
  run: async (args, context) => {
    context.emit({
      type: 'plan',
      ...(args.explanation === undefined ? {} : { explanation: args.explanation }),
      steps: args.plan,
    });
    return { output: 'Plan updated', ok: true, durationMs: 0 };
  },
};
