export { ModelGateway, type GatewayGrant, type ModelGatewayOptions } from './gateway.js';
