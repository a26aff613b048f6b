export { ModelGateway, type GatewayGrant, type ModelGatewayOptions } from './gateway.js';
export { usageOf } from './usage.js';
