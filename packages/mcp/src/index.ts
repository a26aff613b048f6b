export { type ApiAnswer, type PatchbayApi, createMcpServer } from './server.js';
