"use strict";
// The npm `consul` client (pinned in package.json / package-lock.json) used unchanged against a
// running Lotse agent: agent services and checks, catalog, health and the client's `watch` helper
// (blocking queries) on health.service.
//
// Needs the agent address in CONSUL_HTTP_ADDR (`127.0.0.1:8500` or `http://127.0.0.1:8500`) and
// `npm ci` done in this folder. Run by hand:
//   (cd tests/clients/npm && npm ci --no-audit --no-fund)
//   CONSUL_HTTP_ADDR=127.0.0.1:8500 node --test tests/clients/npm/catalog.test.js
// tests/integration/test_npm_consul.py starts an agent and runs this file (so does scripts/test-all).
//
// Node's built-in runner only (node:test, node:assert): it exits non-zero when a test fails.

const test = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");

const Consul = require("consul");

function agentOptions() {
  const raw = process.env.CONSUL_HTTP_ADDR;
  if (!raw) {
    throw new Error("CONSUL_HTTP_ADDR is not set: give the agent's address, e.g. 127.0.0.1:8500");
  }
  const url = new URL(raw.includes("://") ? raw : `http://${raw}`);
  return {
    host: url.hostname,
    port: Number(url.port || (url.protocol === "https:" ? 443 : 8500)),
    secure: url.protocol === "https:",
  };
}

const consul = new Consul(agentOptions());
let nodeName;

// Diagnostics only: papi's errors name neither the call nor the status, and its async stack does
// not reach the test line. Each rejected call's message gets "<method>(<first arg>) -> <status>".
// Requests and results are untouched (the wrapper calls the client's own method with its `this`).
function labelErrors(obj, prefix) {
  for (const key of Object.getOwnPropertyNames(Object.getPrototypeOf(obj))) {
    const fn = obj[key];
    if (key === "constructor" || typeof fn !== "function") continue;
    obj[key] = function (...args) {
      return fn.apply(this, args).catch((err) => {
        const status = err && err.statusCode ? ` -> ${err.statusCode}` : "";
        err.message = `${prefix}.${key}(${JSON.stringify(args[0]) ?? ""})${status}: ${err.message}`;
        throw err;
      });
    };
  }
}
for (const [obj, prefix] of [
  [consul.agent.service, "agent.service"],
  [consul.agent.check, "agent.check"],
  [consul.catalog, "catalog"],
  [consul.catalog.service, "catalog.service"],
  [consul.catalog.node, "catalog.node"],
  [consul.health, "health"],
]) {
  labelErrors(obj, prefix);
}

const uid = (prefix) => `${prefix}-${crypto.randomBytes(4).toString("hex")}`;
const byId = (checks) => Object.fromEntries(checks.map((c) => [c.CheckID, c]));
const serviceIds = (entries) => entries.map((e) => e.Service.ID).sort();
const is404 = (err) => {
  assert.equal(err.statusCode, 404, `expected a 404, got ${err.statusCode}: ${err.message}`);
  return true;
};

test.before(async () => {
  const self = await consul.agent.self();
  nodeName = self.Config.NodeName;
  assert.ok(nodeName, "agent.self() has no Config.NodeName");
});

test.after(() => consul.destroy());

test("agent.service.register / list / deregister", async () => {
  const name = uid("npm-web");
  const id = `${name}-1`;
  const res = await consul.agent.service.register({
    name,
    id,
    tags: ["v1", "primary"],
    address: "10.1.2.3",
    port: 8080,
    meta: { version: "1.2.3" },
  });
  assert.equal(res, undefined); // 200 with an empty body

  let services = await consul.agent.service.list();
  const svc = services[id];
  assert.ok(svc, `service ${id} not in agent.service.list(): ${JSON.stringify(Object.keys(services))}`);
  assert.equal(svc.ID, id);
  assert.equal(svc.Service, name);
  assert.deepEqual(svc.Tags, ["v1", "primary"]);
  assert.equal(svc.Address, "10.1.2.3");
  assert.equal(svc.Port, 8080);
  assert.deepEqual(svc.Meta, { version: "1.2.3" });
  assert.deepEqual(svc.Weights, { Passing: 1, Warning: 1 });
  // agent.services() is the same list.
  assert.deepEqual((await consul.agent.services())[id], svc);

  // Registered in the catalog by the time the call returns.
  const nodes = await consul.catalog.service.nodes(name);
  assert.equal(nodes.length, 1);
  assert.equal(nodes[0].Node, nodeName);
  assert.equal(nodes[0].ServiceID, id);
  assert.equal(nodes[0].ServicePort, 8080);
  assert.deepEqual(nodes[0].ServiceTags, ["v1", "primary"]);

  await consul.agent.service.deregister(id);
  services = await consul.agent.service.list();
  assert.equal(services[id], undefined);
  assert.deepEqual(await consul.catalog.service.nodes(name), []);

  // Unknown ID: 404, which the client raises.
  await assert.rejects(consul.agent.service.deregister(id), is404);
});

test("agent.check.register / pass / warn / fail / list / deregister", async () => {
  const name = uid("npm-ttl");
  const sid = `${name}-1`;
  const svcCheck = `service:${sid}`;
  await consul.agent.service.register({ name, id: sid, tags: ["t"], check: { ttl: "60s" } });

  let checks = await consul.agent.check.list();
  assert.ok(checks[svcCheck], `no ${svcCheck} in ${JSON.stringify(Object.keys(checks))}`);
  assert.equal(checks[svcCheck].Status, "critical"); // TTL checks start critical
  assert.equal(checks[svcCheck].ServiceID, sid);
  assert.equal(checks[svcCheck].ServiceName, name);
  assert.equal(checks[svcCheck].Name, `Service '${name}' check`);

  const cid = uid("npm-extra");
  await consul.agent.check.register({
    name: "npm extra check",
    id: cid,
    serviceid: sid,
    ttl: "60s",
    notes: "registered by the npm client",
  });
  checks = await consul.agent.checks();
  assert.ok(checks[cid], `no ${cid} in ${JSON.stringify(Object.keys(checks))}`);
  assert.equal(checks[cid].Name, "npm extra check");
  assert.equal(checks[cid].Notes, "registered by the npm client");
  assert.equal(checks[cid].ServiceID, sid);
  assert.equal(checks[cid].Status, "critical");
  assert.equal(checks[cid].Node, nodeName);

  await consul.agent.check.pass({ id: cid, note: "fine" });
  checks = await consul.agent.check.list();
  assert.equal(checks[cid].Status, "passing");
  assert.equal(checks[cid].Output, "fine");

  await consul.agent.check.warn({ id: cid, note: "meh" });
  checks = await consul.agent.check.list();
  assert.equal(checks[cid].Status, "warning");
  assert.equal(checks[cid].Output, "meh");

  await consul.agent.check.fail({ id: cid, note: "broken" });
  checks = await consul.agent.check.list();
  assert.equal(checks[cid].Status, "critical");
  assert.equal(checks[cid].Output, "broken");

  await consul.agent.check.pass(svcCheck); // the string form
  checks = await consul.agent.check.list();
  assert.equal(checks[svcCheck].Status, "passing");

  await consul.agent.check.deregister(cid);
  checks = await consul.agent.check.list();
  assert.equal(checks[cid], undefined);
  assert.ok(checks[svcCheck]);

  // Unknown check: 404.
  await assert.rejects(consul.agent.check.pass(cid), is404);
  await assert.rejects(consul.agent.check.deregister(cid), is404);

  await consul.agent.service.deregister(sid);
  checks = await consul.agent.check.list();
  assert.equal(checks[svcCheck], undefined);
});

test("agent.service.maintenance", async () => {
  const name = uid("npm-maint");
  const sid = `${name}-1`;
  await consul.agent.service.register({ name, id: sid });
  await consul.agent.service.maintenance({ id: sid, enable: true, reason: "deploying" });
  let check = (await consul.agent.check.list())[`_service_maintenance:${sid}`];
  assert.ok(check, "no maintenance check");
  assert.equal(check.Status, "critical");
  assert.equal(check.Notes, "deploying");
  assert.deepEqual(await consul.health.service({ service: name, passing: true }), []);

  await consul.agent.service.maintenance({ id: sid, enable: false });
  check = (await consul.agent.check.list())[`_service_maintenance:${sid}`];
  assert.equal(check, undefined);
  assert.deepEqual(serviceIds(await consul.health.service({ service: name, passing: true })), [sid]);
  await consul.agent.service.deregister(sid);
});

test("catalog.register / service.list / service.nodes / node.list / node.services / deregister", async () => {
  const node = uid("npm-ext");
  const name = uid("npm-redis");
  const sid = `${name}-1`;
  await consul.catalog.register({
    node,
    address: "10.9.8.7",
    service: { id: sid, service: name, tags: ["master", "v1"], port: 6379, address: "10.9.8.8" },
    check: {
      node,
      checkid: `service:${sid}`,
      name: "redis check",
      status: "passing",
      serviceid: sid,
    },
  });

  const datacenters = await consul.catalog.datacenters();
  const self = await consul.agent.self();
  assert.deepEqual(datacenters, [self.Config.Datacenter]);

  const services = await consul.catalog.service.list();
  assert.deepEqual([...services[name]].sort(), ["master", "v1"]);
  assert.deepEqual(await consul.catalog.services(), services);

  let nodes = await consul.catalog.service.nodes(name);
  assert.equal(nodes.length, 1);
  assert.equal(nodes[0].Node, node);
  assert.equal(nodes[0].Address, "10.9.8.7");
  assert.equal(nodes[0].ServiceID, sid);
  assert.equal(nodes[0].ServiceName, name);
  assert.equal(nodes[0].ServiceAddress, "10.9.8.8");
  assert.equal(nodes[0].ServicePort, 6379);
  assert.deepEqual(nodes[0].ServiceTags, ["master", "v1"]);
  assert.equal((await consul.catalog.service.nodes({ service: name, tag: "v1" })).length, 1);
  assert.deepEqual(await consul.catalog.service.nodes({ service: name, tag: "nope" }), []);

  const all = await consul.catalog.node.list();
  const names = all.map((n) => n.Node);
  assert.ok(names.includes(node), `${node} not in ${JSON.stringify(names)}`);
  assert.ok(names.includes(nodeName), `agent node ${nodeName} not in ${JSON.stringify(names)}`);
  assert.equal(all.find((n) => n.Node === node).Address, "10.9.8.7");
  assert.deepEqual((await consul.catalog.nodes()).map((n) => n.Node), names);

  const info = await consul.catalog.node.services(node);
  assert.equal(info.Node.Node, node);
  assert.deepEqual(Object.keys(info.Services), [sid]);
  assert.equal(info.Services[sid].Service, name);
  assert.equal(info.Services[sid].Port, 6379);

  const checks = await consul.health.node(node);
  assert.deepEqual(checks.map((c) => c.CheckID), [`service:${sid}`]);

  await consul.catalog.deregister({ node, serviceid: sid });
  assert.deepEqual(await consul.catalog.service.nodes(name), []);
  await consul.catalog.deregister(node);
  nodes = await consul.catalog.node.list();
  assert.ok(!nodes.some((n) => n.Node === node), `${node} still listed after deregister`);
});

test("health.service({passing}) / health.checks / health.state / health.node", async () => {
  const name = uid("npm-health");
  const sid = `${name}-1`;
  const cid = `service:${sid}`;
  await consul.agent.service.register({ name, id: sid, tags: ["blue"], check: { ttl: "60s" } });

  assert.deepEqual(await consul.health.service({ service: name, passing: true }), []);
  let entries = await consul.health.service(name);
  assert.deepEqual(serviceIds(entries), [sid]);
  assert.equal(byId(entries[0].Checks)[cid].Status, "critical");
  assert.ok(byId(entries[0].Checks).serfHealth, "the node's serfHealth is not among the checks");

  await consul.agent.check.pass({ id: cid, note: "up" });
  entries = await consul.health.service({ service: name, passing: true });
  assert.deepEqual(serviceIds(entries), [sid]);
  assert.equal(entries[0].Node.Node, nodeName);
  assert.deepEqual(entries[0].Service.Tags, ["blue"]);
  assert.equal(byId(entries[0].Checks)[cid].Output, "up");
  assert.deepEqual(serviceIds(await consul.health.service({ service: name, tag: "blue", passing: true })), [sid]);
  assert.deepEqual(await consul.health.service({ service: name, tag: "red" }), []);

  let checks = await consul.health.checks(name);
  assert.deepEqual(checks.map((c) => [c.CheckID, c.Status]), [[cid, "passing"]]);
  assert.ok(byId(await consul.health.state("passing"))[cid]);
  assert.equal(byId(await consul.health.state("critical"))[cid], undefined);
  const passing = await consul.health.state({ state: "passing" });
  assert.ok(passing.every((c) => c.Status === "passing"));

  await consul.agent.check.warn({ id: cid, note: "slow" });
  assert.deepEqual(await consul.health.service({ service: name, passing: true }), []);
  assert.ok(byId(await consul.health.state("warning"))[cid]);

  await consul.agent.check.fail({ id: cid, note: "down" });
  checks = await consul.health.checks({ service: name });
  assert.deepEqual(checks.map((c) => [c.CheckID, c.Status, c.Output]), [[cid, "critical", "down"]]);
  assert.ok(byId(await consul.health.state("critical"))[cid]);
  assert.ok(byId(await consul.health.state("any"))[cid]);

  const nodeChecks = byId(await consul.health.node(nodeName));
  assert.equal(nodeChecks.serfHealth.Status, "passing");
  assert.equal(nodeChecks[cid].Status, "critical");

  await consul.agent.service.deregister(sid);
  assert.deepEqual(await consul.health.checks(name), []);
  assert.deepEqual(await consul.health.service(name), []);
});

test("watch on health.service wakes when an instance is added", async () => {
  const name = uid("npm-watch");
  await consul.agent.service.register({ name, id: `${name}-1` });

  const seen = [];
  const watch = consul.watch({
    method: consul.health.service,
    options: { service: name, passing: true, wait: "10s" },
    backoffFactor: 50,
  });
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`watch did not report 2 instances within 20s; saw ${JSON.stringify(seen)}`)),
        20000,
      );
      const fail = (err) => {
        clearTimeout(timer);
        reject(err);
      };
      watch.on("error", fail);
      watch.on("change", (data, res) => {
        const ids = serviceIds(data);
        seen.push({ ids, index: res.headers["x-consul-index"], at: Date.now() });
        if (seen.length === 1) {
          if (ids.length !== 1 || ids[0] !== `${name}-1`) {
            return fail(new Error(`first change should list only ${name}-1, got ${JSON.stringify(ids)}`));
          }
          // The watch is now parked on a blocking query; add an instance after a moment.
          setTimeout(() => {
            consul.agent.service.register({ name, id: `${name}-2` }).catch(fail);
          }, 500);
        } else if (ids.length === 2) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } finally {
    watch.end();
  }
  const first = seen[0];
  const last = seen[seen.length - 1];
  assert.deepEqual(last.ids, [`${name}-1`, `${name}-2`]);
  assert.ok(BigInt(last.index) > BigInt(first.index), `index did not move: ${first.index} -> ${last.index}`);
  // It woke because of the change, not because the 10s wait ran out.
  assert.ok(last.at - first.at < 8000, `woke after ${last.at - first.at} ms`);
  await consul.agent.service.deregister(`${name}-1`);
  await consul.agent.service.deregister(`${name}-2`);
});
