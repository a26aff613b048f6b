import type { Script, ScriptRequest, ScriptedCall, ScriptedTurn } from '@patchbay/agent/testing';

/**
 * A scripted model that serves many tasks at once: each task's prompt names a scenario, and the
 * turn it plays is the scenario's step number `n` = how many tool outputs the run has seen since
 * that prompt. In a follow-up turn the latest prompt naming a scenario decides, so each turn of a
 * conversation can play a scenario of its own.
 */
export type Scenario = (step: number, request: ScriptRequest) => ScriptedTurn;

export function scenarioScript(scenarios: Record<string, Scenario>): Script {
  return {
    *[Symbol.iterator]() {
      for (;;) {
        yield (request: ScriptRequest): ScriptedTurn => {
          const at = request.items.findLastIndex(
            (i) => i.type === 'message' && i.role === 'user' && i.text.includes('SCENARIO:'),
          );
          const prompt = request.items[at];
          const name =
            prompt?.type === 'message' ? /SCENARIO:([\w-]+)/.exec(prompt.text)?.[1] : undefined;
          const scenario = name === undefined ? undefined : scenarios[name];
          if (!scenario) return { text: `no scenario for this task (${name ?? 'none'})` };
          const outputs = request.items
            .slice(at + 1)
            .filter((i) => i.type === 'function_call_output').length;
          return scenario(outputs, request);
        };
      }
    },
  };
}

/** A scenario that makes `calls` one per turn, then finishes with `summary`. */
export function steps(calls: ScriptedCall[], summary = 'Done.'): Scenario {
  return (n) => {
    const call = calls[n];
    return call ? { text: `Step ${n + 1}.`, calls: [call] } : { text: summary };
  };
}

export const shell = (command: string, extra: Record<string, unknown> = {}): ScriptedCall => ({
  name: 'shell',
  arguments: { command, ...extra },
});

export const applyPatch = (input: string): ScriptedCall => ({
  name: 'apply_patch',
  arguments: { input },
});

/** Lists every file under the cwd but .git with its sha256 and executable bit, sorted. */
export const FINGERPRINT =
  'find . -path ./.git -prune -o \\( -type f -o -type l \\) -print0 | sort -z | xargs -0 -r sh -c \'for f; do if [ -L "$f" ]; then echo "link $(readlink "$f") $f"; else echo "$(sha256sum < "$f" | cut -c1-64) $([ -x "$f" ] && echo x || echo -) $f"; fi; done\' _';
