export { sameService, zoneChanges } from "./changes.js";
export {
  type ClusterZoneInput,
  type ClusterZoneOptions,
  clusterZoneInput,
  type ZoneEndpoint,
  type ZonePod,
  type ZonePort,
  type ZoneService,
  type ZoneServiceKind,
  zonePort,
} from "./input.js";
export {
  addressFromReverse,
  dashedIp,
  parseRequest,
  podNameAddress,
  type RecordRequest,
  reverseName,
} from "./names.js";
export { buildClusterZone, ClusterZone, DNS_SCHEMA_VERSION, type ZoneChange } from "./zone.js";
