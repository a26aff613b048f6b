import type { TaskEventBody } from '@patchbay/core';
import type { CliAgent, CliTranslator } from './cli-agent.js';
import { CodexTranslator } from './codex-events.js';

/** Where the sandbox image has the Codex CLI (docker/sandbox/Dockerfile, pinned there). */
const CODEX = '/opt/codex/bin/codex';
/** Codex keeps its sessions and config here: the sandbox user's home, a tmpfs. */
const CODEX_HOME = '/home/agent/.codex';

/**
 * The Codex CLI as a runtime: `codex exec --json` in /workspace, its model provider the gateway
 * (Responses wire, the token in an environment variable of the run only), its own sandbox off —
 * the container is the sandbox —, the prompt on standard input; it reads AGENTS.md itself.
 */
export const codexAgent: CliAgent = {
  name: 'codex',
  command(input, gateway) {
    const provider =
      `{name="Patchbay gateway",base_url=${JSON.stringify(gateway.url)},` +
      'env_key="PATCHBAY_MODEL_TOKEN",wire_api="responses",request_max_retries=4,stream_max_retries=4}';
    const effort = input.model.reasoningEffort;
    return {
      argv: [
        'bash',
        '-c',
        'mkdir -p "$CODEX_HOME" && exec "$@"',
        'codex',
        CODEX,
        'exec',
        '--json',
        '--skip-git-repo-check',
        '--sandbox',
        'danger-full-access',
        '--cd',
        '/workspace',
        '-c',
        'model_provider="patchbay"',
        // No calls of the CLI's own to outside hosts (update check, analytics, plugin sync from
        // github.com and chatgpt.com): the task's network is for the task.
        '-c',
        'check_for_update_on_startup=false',
        '-c',
        'analytics.enabled=false',
        '-c',
        'features.plugins=false',
        '-c',
        `model_providers.patchbay=${provider}`,
        ...(effort === null ? [] : ['-c', `model_reasoning_effort="${effort}"`]),
        '--model',
        input.model.name,
        '-',
      ],
      env: { CODEX_HOME, PATCHBAY_MODEL_TOKEN: gateway.token },
      stdin: input.prompt,
    };
  },
  translator(emit: (event: TaskEventBody) => void): CliTranslator {
    return new CodexTranslator(emit);
  },
};
