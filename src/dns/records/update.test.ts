/** Incremental updates: a zone updated with zoneChanges answers exactly as one built from scratch. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { zoneChanges } from "./changes.js";
import type { ClusterZoneInput, ZoneEndpoint, ZoneService } from "./input.js";
import { dashedIp, reverseName } from "./names.js";
import {
  syntheticEndpointIp,
  syntheticService,
  syntheticZoneInput,
  withoutLastEndpoint,
} from "./synthetic.js";
import { buildClusterZone, type ClusterZone } from "./zone.js";

const OPTIONS = { services: 40, endpointsPerService: 3, namespaces: 4 };

/** Questions that touch every kind of record of the synthetic zone. */
function questions(input: ClusterZoneInput): [string, string][] {
  const out: [string, string][] = [];
  for (const s of input.services) {
    const name = `${s.name}.${s.namespace}.svc.cluster.local`;
    out.push([name, "A"], [`_http._tcp.${name}`, "SRV"]);
    for (const ip of s.clusterIPs) out.push([reverseName(ip), "PTR"]);
    for (const ep of s.endpoints) {
      out.push([reverseName(ep.ip), "PTR"], [`${ep.hostname ?? dashedIp(ep.ip)}.${name}`, "A"]);
      out.push([`${dashedIp(ep.ip)}.${s.namespace}.pod.cluster.local`, "A"]);
    }
  }
  return out;
}

function assertSameAnswers(updated: ClusterZone, fresh: ClusterZone, qs: [string, string][]): void {
  for (const [q, t] of qs) {
    const a = updated.lookup(q, t);
    const b = fresh.lookup(q, t);
    // The SOA serial differs by design (one more per update): compare without it.
    const strip = (r: typeof a) => r && { ...r, authority: r.authority.map((x) => ({ ...x, data: null })) };
    assert.deepEqual(strip(a), strip(b), `${q} ${t}`);
  }
}

test("zoneChanges: nothing for equal inputs; one change per changed, added or removed service", () => {
  const before = syntheticZoneInput(OPTIONS);
  assert.deepEqual(zoneChanges(before, syntheticZoneInput(OPTIONS)), []);
  const after = withoutLastEndpoint(before, 5);
  const added: ZoneService = syntheticService(40, OPTIONS);
  after.services.push(added);
  after.services.splice(7, 1);
  const changes = zoneChanges(before, after) ?? [];
  assert.deepEqual(
    changes.map((c) =>
      c.kind === "service" ? `set ${c.service.name}` : c.kind === "service-removed" ? `rm ${c.name}` : c.kind,
    ),
    ["set svc-5", "set svc-40", "rm svc-7"],
  );
  assert.equal(zoneChanges(before, { ...before, ttl: 30 }), undefined, "a zone-wide setting: rebuild");
});

test("an updated zone answers as a rebuilt one (indexes built before the update included)", () => {
  const before = syntheticZoneInput(OPTIONS);
  const zone = buildClusterZone(before);
  const qs = questions(before);
  // Build the lazy reverse and pod indexes first, so that update has to maintain them.
  for (const [q, t] of qs) zone.lookup(q, t);

  const after = withoutLastEndpoint(before, 5); // a headless service (odd index) loses an endpoint
  after.services[2] = { ...(after.services[2] as ZoneService), clusterIPs: ["10.96.200.1"] };
  after.services.splice(9, 1);
  after.services.push(syntheticService(40, OPTIONS));
  after.pods = after.pods.slice(1);
  after.namespaces = after.namespaces.slice(0, 3);
  const changes = zoneChanges(before, after);
  assert.ok(changes);
  const serial = zone.serial;
  zone.update(changes);
  assert.equal(zone.serial, serial + 1);
  assertSameAnswers(zone, buildClusterZone(after), [...qs, ...questions(after)]);

  const gone = syntheticEndpointIp(5 * OPTIONS.endpointsPerService + 2);
  assert.equal(zone.lookup(reverseName(gone), "PTR"), undefined, "the removed endpoint's PTR is gone");
  assert.equal(
    zone.lookup(reverseName("10.96.200.1"), "PTR")?.answers[0]?.data,
    "svc-2.ns-2.svc.cluster.local",
  );
});

test("names from the input are matched case-insensitively (qnames arrive lower case)", () => {
  const input = syntheticZoneInput({ services: 2, endpointsPerService: 1, namespaces: 1 });
  const svc = input.services[1] as ZoneService;
  input.services[1] = {
    ...svc,
    name: "Svc-1",
    endpoints: [{ ...(svc.endpoints[0] as ZoneEndpoint), hostname: "Web-0" }],
  };
  const zone = buildClusterZone(input);
  const r = zone.lookup("web-0.svc-1.ns-0.svc.cluster.local", "A");
  assert.equal(r?.rcode, "NOERROR");
  assert.equal(r?.answers.length, 1);
  const srv = zone.lookup("_http._tcp.svc-1.ns-0.svc.cluster.local", "SRV");
  assert.equal(
    srv?.answers[0]?.data && (srv.answers[0].data as { target: string }).target,
    "web-0.svc-1.ns-0.svc.cluster.local",
  );
});
