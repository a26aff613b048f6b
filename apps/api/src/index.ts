export { type AppDeps } from './app.js';
export { startApi, type ApiServer, type ApiServerOptions } from './server.js';
