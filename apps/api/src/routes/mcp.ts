import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { type PatchbayApi, createMcpServer } from '@patchbay/mcp';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import packageJson from '../../package.json' with { type: 'json' };

/**
 * `/mcp`: Patchbay as an MCP server over Streamable HTTP, for other agents. Stateless: each POST
 * is one JSON-RPC exchange with a server of its own, answered as JSON; there is no session to
 * resume and no stream to open (GET and DELETE answer 405). It sits behind the tenant's bearer
 * key and rate limit like every `/v1` route, and its tools call those routes in process with the
 * same key, so a tool call is refused, validated and counted exactly as the REST call would be.
 */
export const mcpRoutes: FastifyPluginAsync = async (app) => {
  app.post(
    '/mcp',
    { schema: { summary: 'Model Context Protocol (Streamable HTTP)', hide: true } },
    async (request, reply) => {
      const api = inProcess(app, request.headers.authorization);
      const server = createMcpServer(api, packageJson.version);
      // No session id generator: stateless.
      const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true });
      reply.hijack();
      reply.raw.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(request.raw, reply.raw, request.body);
    },
  );

  const notAllowed = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply
      .code(405)
      .header('allow', 'POST')
      .send({
        jsonrpc: '2.0',
        error: { code: -32000, message: 'this MCP endpoint is stateless: POST requests only' },
        id: null,
      });
  app.get('/mcp', { schema: { hide: true } }, notAllowed);
  app.delete('/mcp', { schema: { hide: true } }, notAllowed);
};

/** The API's own routes, reached without the network, as the caller of `/mcp`. */
function inProcess(app: FastifyInstance, authorization: string | undefined): PatchbayApi {
  return {
    async request(method, path, body) {
      const res = await app.inject({
        method,
        url: path,
        headers: {
          ...(authorization === undefined ? {} : { authorization }),
          'patchbay-client': 'mcp',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      });
      return { status: res.statusCode, body: res.body };
    },
  };
}
