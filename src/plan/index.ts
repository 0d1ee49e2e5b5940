export { type PlanOptions, planAddresses } from "./address-plan.js";
export { checkRanges, collectRanges } from "./checks.js";
export { formatPlan, formatServicePorts } from "./format.js";
export type * from "./types.js";
