import { z } from 'zod';
import { TaskSpec } from './task.js';

/** What `POST /v1/schedules` takes: a task spec and when to run it. */
export const ScheduleSpec = z
  .strictObject({
    cron: z
      .string()
      .min(1)
      .max(120)
      .describe(
        'When to run: a cron pattern, five fields (minute hour day month weekday) or six with seconds first.',
      ),
    timezone: z
      .string()
      .min(1)
      .max(64)
      .default('UTC')
      .describe('The IANA time zone the pattern is read in, e.g. `Europe/Paris`.'),
    spec: TaskSpec.describe('The task each run submits, as `POST /v1/tasks` takes it.'),
  })
  .describe('A task spec run on a schedule.');
export type ScheduleSpec = z.infer<typeof ScheduleSpec>;

/** One firing of a schedule: the task it started, or why it started none. */
export const ScheduleRun = z.object({
  at: z.string(),
  taskId: z.string().nullable(),
  /** Why no task was started: the previous run is still going, or the submit was refused. */
  skipped: z.string().nullable(),
});
export type ScheduleRun = z.infer<typeof ScheduleRun>;

export const Schedule = z.object({
  id: z.string(),
  tenant: z.string(),
  cron: z.string(),
  timezone: z.string(),
  spec: TaskSpec,
  paused: z.boolean(),
  createdAt: z.string(),
  /** The latest run, if any. */
  lastRun: ScheduleRun.nullable(),
});
export type Schedule = z.infer<typeof Schedule>;

/** A schedule as the API shows it: no tenant, and when it runs next. */
export const ScheduleView = Schedule.omit({ tenant: true }).extend({
  nextRunAt: z.string().nullable(),
});
export type ScheduleView = z.infer<typeof ScheduleView>;
