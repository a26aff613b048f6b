import { z } from 'zod';
import { ERROR_CODES } from './errors.js';
import { TaskPhase, TaskStatus } from './task.js';

/** Per-event cap on text fields (outputs, messages); the event says when it was cut. */
export const EVENT_TEXT_LIMIT = 64 * 1024;

const Truncation = {
  /** Bytes of the original text left out of this event. */
  droppedBytes: z.number().int().nonnegative().optional(),
};

export const PlanStep = z.object({
  step: z.string(),
  status: z.enum(['pending', 'in_progress', 'completed']),
});
export type PlanStep = z.infer<typeof PlanStep>;

/** Everything that happens to a task, as the payload of one event (without seq and time). */
export const TaskEventBody = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('status'),
    status: TaskStatus,
    phase: TaskPhase.nullable().optional(),
    error: z.object({ code: z.enum(ERROR_CODES), message: z.string() }).optional(),
  }),
  z.object({
    type: z.literal('phase'),
    phase: TaskPhase,
    /** Which try of the run this is (above 1 after a retry or a worker that died). */
    try: z.number().int().optional(),
    /**
     * On a follow-up turn's `provision`: true when it goes on in the sandbox the previous turn
     * left (no fetch, no setup), false when it rebuilds that state in a fresh one.
     */
    warm: z.boolean().optional(),
  }),
  z.object({
    type: z.literal('attempt'),
    attempt: z.number().int().positive(),
    model: z.string(),
    status: TaskStatus,
    error: z.object({ code: z.enum(ERROR_CODES), message: z.string() }).optional(),
  }),
  z.object({
    type: z.literal('turn'),
    turn: z.number().int().positive(),
    prompt: z.string(),
    ...Truncation,
  }),
  z.object({
    type: z.literal('output'),
    phase: TaskPhase,
    text: z.string(),
    ...Truncation,
  }),
  z.object({
    type: z.literal('command'),
    phase: TaskPhase,
    command: z.string(),
    exitCode: z.number().int().nullable(),
    durationMs: z.number().nonnegative(),
    timedOut: z.boolean().optional(),
  }),
  z.object({ type: z.literal('assistant_message'), text: z.string(), ...Truncation }),
  z.object({ type: z.literal('reasoning'), text: z.string(), ...Truncation }),
  z.object({
    type: z.literal('tool_call'),
    callId: z.string(),
    name: z.string(),
    arguments: z.string(),
    ...Truncation,
  }),
  z.object({
    type: z.literal('tool_output'),
    callId: z.string(),
    name: z.string(),
    ok: z.boolean(),
    exitCode: z.number().int().nullable().optional(),
    durationMs: z.number().nonnegative(),
    output: z.string(),
    ...Truncation,
  }),
  z.object({
    type: z.literal('plan'),
    explanation: z.string().optional(),
    steps: z.array(PlanStep),
  }),
  z.object({
    type: z.literal('usage'),
    inputTokens: z.number().int().nonnegative(),
    cachedInputTokens: z.number().int().nonnegative(),
    outputTokens: z.number().int().nonnegative(),
    reasoningTokens: z.number().int().nonnegative(),
  }),
  z.object({ type: z.literal('compaction'), summarizedItems: z.number().int().nonnegative() }),
  z.object({
    type: z.literal('network.blocked'),
    /** What the agent tried to reach through the egress proxy, and why it was refused. */
    host: z.string(),
    port: z.number().int(),
    reason: z.enum(['not_allowed', 'private_address', 'unresolved', 'unknown_client']),
  }),
  z.object({
    type: z.literal('error'),
    code: z.enum(ERROR_CODES),
    message: z.string(),
    phase: TaskPhase.nullable().optional(),
  }),
]);
export type TaskEventBody = z.infer<typeof TaskEventBody>;
export type TaskEventType = TaskEventBody['type'];

/** An event as stored and served: `seq` strictly increases within a task, from 1. */
export type TaskEvent = TaskEventBody & { seq: number; time: string };
export const TaskEvent: z.ZodType<TaskEvent> = z.intersection(
  TaskEventBody,
  z.object({ seq: z.number().int().positive(), time: z.string() }),
);

/** Cuts text to `limit` bytes keeping head and tail, and says how much was left out. */
export function capText(
  text: string,
  limit = EVENT_TEXT_LIMIT,
): { text: string; droppedBytes?: number } {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= limit) return { text };
  const buf = Buffer.from(text, 'utf8');
  const half = Math.floor(limit / 2);
  const dropped = bytes - 2 * half;
  const head = buf.subarray(0, half).toString('utf8');
  const tail = buf.subarray(bytes - half).toString('utf8');
  return { text: `${head}\n[… ${dropped} bytes omitted …]\n${tail}`, droppedBytes: dropped };
}
