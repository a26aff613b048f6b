import { Command } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
import { EXIT, action } from '../context.js';
import { loadTypeScriptPackages } from '../typescript.js';

/**
 * `patchbay mcp`: Patchbay as a Model Context Protocol server on stdin/stdout, for an agent that
 * starts it as a subprocess (Claude Code, Codex, an IDE). Its tools call the server named by
 * `--server`/`PATCHBAY_URL` with `--key`/`PATCHBAY_API_KEY`; stdout carries only the protocol.
 */
export function mcpCommand(): Command {
  return new Command('mcp')
    .description(
      'Serve Patchbay to an MCP client over stdio: submit, follow up, read, choose and deliver tasks as tools.',
    )
    .action(
      action(async (ctx) => {
        await loadTypeScriptPackages();
        const [{ createMcpServer }, { StdioServerTransport }] = await Promise.all([
          import('@patchbay/mcp'),
          import('@modelcontextprotocol/sdk/server/stdio.js'),
        ]);
        const server = createMcpServer(
          { request: (method, path, body) => ctx.client.exchange(method, path, body) },
          packageJson.version,
        );
        const transport = new StdioServerTransport();
        const closed = new Promise<void>((resolve) => {
          transport.onclose = resolve;
          process.stdin.once('end', resolve);
        });
        await server.connect(transport);
        await closed;
        await server.close();
        return EXIT.ok;
      }),
    );
}
