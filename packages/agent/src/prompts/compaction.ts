/**
 * Sent as the last user message of a compaction call: the model summarises the conversation,
 * and the summary replaces the older turns. It sees the same instructions, tools and history as
 * every other turn, so the request reuses their cached prefix.
 */
export const COMPACTION_PROMPT = `Pause the task. The conversation is nearing the model's context limit, so its earlier part is about to be replaced by a summary you write now. Do not call any tool in this reply.

Write a handoff summary that lets you continue the task without the earlier messages:
- The task and any constraints or instructions that still apply.
- What you have learnt about the repository: relevant files, functions, commands and how to run the tests.
- What you have done so far: every file changed and how, and the commands run with their outcomes.
- The current state: what works, what fails (with the exact error messages that matter), and open questions.
- The next steps, in order.

Be concise but specific: keep exact paths, identifiers, commands and error messages.`;

/** Introduces the summary where the older turns were. */
export const COMPACTION_SUMMARY_PREFIX = `The earlier part of this conversation was removed to stay within the context limit. This is the summary written at that point; the most recent steps follow it unchanged.

`;
