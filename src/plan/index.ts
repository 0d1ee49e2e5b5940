export { type PlanOptions, planAddresses } from "./address-plan.js";
export { checkRanges, collectRanges } from "./checks.js";
export { formatPlan, formatServicePorts } from "./format.js";
export {
  type AddressOwner,
  DEFAULT_TRANSIT_POOL,
  ownerOfAddress,
  type PeerReachability,
  peeringBetween,
  peeringReachability,
  planPeerings,
  transitAddresses,
} from "./peering.js";
export type * from "./types.js";
