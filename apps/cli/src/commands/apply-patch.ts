import { Command } from 'commander';
import { loadTypeScriptPackages } from '../typescript.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
}

/**
 * `patchbay apply-patch [patch]`: applies a Codex-format patch in the current directory, like
 * the reference `apply_patch` binary: same output, exit 0 on success, 1 when the patch is
 * refused (the reason on stderr), 2 on a usage error.
 */
export function applyPatchCommand(): Command {
  return new Command('apply-patch')
    .description(
      'Apply a patch in the Codex format (*** Begin Patch … *** End Patch) to files under the current directory.',
    )
    .argument('[patch]', 'the patch text; read from standard input when omitted')
    .action(async (patch: string | undefined, _options: unknown, command: Command) => {
      let text = patch;
      if (text === undefined) {
        try {
          text = await readStdin();
        } catch (err) {
          command.error(`Error: Failed to read PATCH from stdin.\n${(err as Error).message}`);
        }
        if (text === '') {
          command.error(
            "Usage: patchbay apply-patch 'PATCH'\n       echo 'PATCH' | patchbay apply-patch",
            { exitCode: 2 },
          );
        }
      }
      // Loaded here, not at the top: the agent package (and the openai SDK behind it) would cost
      // every other command, `--help` included, most of a second at start.
      await loadTypeScriptPackages();
      const { LocalPatchFileSystem, applyPatch, isApplyPatchError } =
        await import('@patchbay/agent');
      try {
        const result = await applyPatch(text, new LocalPatchFileSystem(process.cwd()));
        process.stdout.write(result.summary);
      } catch (err) {
        if (!isApplyPatchError(err)) throw err;
        process.stderr.write(`${err.message}\n`);
        process.exitCode = 1;
      }
    });
}
