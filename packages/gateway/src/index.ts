export {
  EgressProxy,
  type EgressAdmission,
  type EgressBlock,
  type EgressClient,
  type EgressProxyOptions,
} from './egress.js';
export { ModelGateway, type GatewayGrant, type ModelGatewayOptions } from './gateway.js';
