import { EMPTY_USAGE, type Logger, PatchbayError, type TaskEventBody } from '@patchbay/core';
import { type CliTurn, cliTurns, promptWithHistory } from './history.js';
import type { SandboxGateway } from './sandbox-gateway.js';
import type { AgentOutcome, AgentRunInput, AgentRunner } from '@patchbay/pipeline';
import type { Reach } from '@patchbay/sandbox';

/** Reads a CLI agent's output, line by line, into Patchbay events. */
export interface CliTranslator {
  line(text: string): void;
  finish(): { summary: string | null; failure: string | null; toolCalls: number };
}

/**
 * A CLI agent that runs inside the sandbox: how to start it pointed at the gateway, and how to
 * read what it prints. A runtime for another CLI agent is one more of these.
 */
export interface CliAgent {
  readonly name: string;
  /** The command line, its environment and standard input, for a task's run. */
  command(
    input: AgentRunInput,
    gateway: { url: string; token: string },
  ): { argv: string[]; env: Record<string, string>; stdin: string };
  translator(emit: (event: TaskEventBody) => void): CliTranslator;
}

/** Most output of one CLI agent run kept (its JSON events stream through `onOutput` as well). */
const MAX_OUTPUT_BYTES = 32 * 1024 * 1024;
/** Raw lines kept in the transcript artifact. */
const MAX_TRANSCRIPT_LINES = 20_000;

/**
 * Runs a CLI agent in the task's sandbox with nothing secret in it: the sandbox reaches the
 * gateway for the run only (a loopback port the provider carries to it), the agent gets a token
 * of the task's own (revoked when the run ends, whatever happens), and its model calls are
 * counted by the gateway against the task's budgets.
 */
export class CliRuntime implements AgentRunner {
  constructor(
    private readonly agent: CliAgent,
    private readonly gateway: SandboxGateway,
    private readonly log: Logger,
  ) {}

  async run(input: AgentRunInput): Promise<AgentOutcome> {
    const { sandbox, signal } = input;
    const gateway = await this.gateway.open();
    const grant = gateway.grant(input.taskId, {
      maxTokens: input.limits.maxTokens,
      maxTurns: input.limits.maxTurns,
    });
    const mask = (text: string): string => text.replaceAll(grant.token, '[token]');
    const translator = this.agent.translator((event) => input.emit(event));
    const transcript: string[] = [];
    let pending = '';
    let stderr = '';
    const take = (line: string): void => {
      if (transcript.length < MAX_TRANSCRIPT_LINES) transcript.push(mask(line));
      translator.line(mask(line));
    };
    let reach: Reach | undefined;
    try {
      reach = await sandbox.reach(gateway.service, { signal });
      const earlier = cliTurns(input.history);
      const prompt = promptWithHistory(input.prompt, earlier);
      const { argv, env, stdin } = this.agent.command(
        { ...input, prompt },
        {
          url: `${reach.url}${gateway.path}`,
          token: grant.token,
        },
      );
      const result = await sandbox.exec(argv, {
        env,
        stdin,
        timeoutMs: Math.max(1000, input.limits.deadline - Date.now()),
        maxOutputBytes: MAX_OUTPUT_BYTES,
        signal,
        onOutput: (chunk, stream) => {
          if (stream === 'stderr') {
            stderr = (stderr + chunk.toString('utf8')).slice(-4000);
            return;
          }
          pending += chunk.toString('utf8');
          let newline: number;
          while ((newline = pending.indexOf('\n')) >= 0) {
            take(pending.slice(0, newline));
            pending = pending.slice(newline + 1);
          }
        },
      });
      if (pending !== '') take(pending);
      signal.throwIfAborted();
      const read = translator.finish();
      const usage = { ...EMPTY_USAGE, ...grant.usage(), toolCalls: read.toolCalls };
      input.emit({
        type: 'usage',
        inputTokens: usage.inputTokens,
        cachedInputTokens: usage.cachedInputTokens,
        outputTokens: usage.outputTokens,
        reasoningTokens: usage.reasoningTokens,
      });
      const stopReason = grant.exhausted() ?? (result.timedOut ? 'timeout' : 'completed');
      if (stopReason === 'completed' && (result.exitCode !== 0 || read.failure !== null)) {
        const why = read.failure ?? (mask(stderr).trim().split('\n').at(-1) || 'no output');
        this.log.warn(
          { taskId: input.taskId, exitCode: result.exitCode, stderr: mask(stderr) },
          `${this.agent.name} failed`,
        );
        throw new PatchbayError(
          'model_error',
          `${this.agent.name} exited with ${result.exitCode ?? result.signal}: ${why}`,
        );
      }
      return {
        summary: read.summary,
        stopReason,
        usage,
        transcript: { version: 1, runtime: this.agent.name, lines: transcript },
        conversation: [
          ...earlier,
          { type: 'cli_turn', prompt: input.prompt, summary: read.summary } satisfies CliTurn,
        ],
      };
    } finally {
      grant.revoke();
      await reach?.release();
    }
  }
}
