// Service registration against a real etcd 3.4: the entry, its lease, health changes, store outages and
// deregistration, observed from the store the way load balancers and `vigie services` see it.
import { createServer, type Server } from "node:http";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type ServiceConfig, serviceSchema } from "../../../src/config/schema.js";
import { silentLogger } from "../../../src/log.js";
import { MetricsRegistry } from "../../../src/metrics.js";
import {
  parseInstance,
  type RegistryStore,
  type RunningServices,
  type ServiceInstance,
  startServices,
} from "../../../src/services/index.js";
import { StoreClient } from "../../../src/store/client.js";
import { type EtcdProcess, startEtcd } from "../../helpers/etcd.js";
import { waitFor } from "../../helpers/ports.js";
import { requireTools } from "../../helpers/require-tool.js";
import { startTcpProxy } from "./tcp-proxy.js";

interface Context {
  etcd: EtcdProcess | undefined;
  client: StoreClient | undefined;
  cleanups: Array<() => Promise<unknown> | unknown>;
}

const registration = suite<Context>("services: registration against etcd", {
  etcd: undefined,
  client: undefined,
  cleanups: [],
});
const tools = requireTools("services registration", "etcd");

/** A real backend whose /health answer the test flips. */
async function startBackend(): Promise<{ port: number; setHealthy(healthy: boolean): void; server: Server }> {
  let healthy = true;
  const server = createServer((_request, response) => {
    response.statusCode = healthy ? 200 : 503;
    response.end(healthy ? "ok" : "sick");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address !== "object") throw new Error("no address");
  return { port: address.port, server, setHealthy: (value) => (healthy = value) };
}

function service(input: Record<string, unknown>): ServiceConfig {
  return serviceSchema.parse(input);
}

async function instances(client: StoreClient, name: string): Promise<ServiceInstance[]> {
  const { kvs } = await client.range(`/services/${name}/`, { prefix: true });
  return kvs.map((kv) => parseInstance(kv.key.toString(), kv.value.toString()));
}

registration.before(async (context) => {
  if (!tools) return;
  context.etcd = await startEtcd();
  context.client = new StoreClient({ endpoints: [context.etcd.clientUrl] });
});

registration.after.each(async (context) => {
  for (const cleanup of context.cleanups.splice(0).reverse()) await cleanup();
});

registration.after(async (context) => {
  await context.client?.close();
  await context.etcd?.stop();
});

function run(context: Context, services: ServiceConfig[], client: StoreClient = context.client!): RunningServices {
  const running = startServices({ services, client, logger: silentLogger(), metrics: new MetricsRegistry() });
  context.cleanups.push(() => running.stop());
  return running;
}

registration("a healthy instance is written with its lease, and stop() revokes it at once", async (context) => {
  if (!tools) return;
  const backend = await startBackend();
  context.cleanups.push(() => new Promise((resolve) => backend.server.close(resolve)));
  const address = `127.0.0.1:${backend.port}`;
  const running = run(context, [
    service({
      name: "web",
      address,
      tags: ["blue"],
      meta: { zone: "a" },
      check: { http: `http://${address}/health`, interval: "100ms", timeout: "500ms" },
      ttl: "5s",
    }),
  ]);
  const [found] = await waitFor("web registered", async () => {
    const list = await instances(context.client!, "web");
    return list.length === 1 ? list : undefined;
  });
  assert.equal(found, {
    name: "web",
    id: `web-127.0.0.1-${backend.port}`,
    address,
    host: "127.0.0.1",
    port: backend.port,
    tags: ["blue"],
    meta: { zone: "a" },
    health: "passing",
  });
  const [kv] = (await context.client!.range(`/services/web/web-127.0.0.1-${backend.port}`)).kvs;
  assert.ok(kv !== undefined && kv.lease !== "0", "the entry is attached to a lease");
  const ttl = await context.client!.leaseTimeToLive(kv.lease);
  assert.ok(ttl.grantedTtlSeconds === 5, `granted ttl ${ttl.grantedTtlSeconds}`);
  const [status] = running.status();
  assert.equal([status?.health, status?.announced, status?.leaseId], ["passing", "passing", kv.lease]);
  await running.stop();
  assert.equal(await instances(context.client!, "web"), [], "deregistered without waiting for the ttl");
  assert.is((await context.client!.leaseTimeToLive(kv.lease)).ttlSeconds, -1, "the lease is revoked");
});

registration("the lease is renewed while healthy: the entry outlives its ttl", async (context) => {
  if (!tools) return;
  run(context, [service({ name: "cache", id: "cache-1", address: "127.0.0.1:6379", ttl: "2s" })]);
  await waitFor("cache registered", async () => (await instances(context.client!, "cache")).length === 1);
  await new Promise((resolve) => setTimeout(resolve, 3_500));
  const list = await instances(context.client!, "cache");
  assert.equal(
    list.map((instance) => [instance.id, instance.health]),
    [["cache-1", "passing"]],
  );
});

registration("failing → marked critical, then removed when its lease expires; recovering → back", async (context) => {
  if (!tools) return;
  const backend = await startBackend();
  context.cleanups.push(() => new Promise((resolve) => backend.server.close(resolve)));
  const address = `127.0.0.1:${backend.port}`;
  const running = run(context, [
    service({
      name: "api",
      id: "api-1",
      address,
      check: { http: `http://${address}/`, interval: "50ms", timeout: "500ms", unhealthy_threshold: 2 },
      ttl: "2s",
    }),
  ]);
  await waitFor("api passing", async () => (await instances(context.client!, "api"))[0]?.health === "passing");
  backend.setHealthy(false);
  await waitFor("api critical", async () => (await instances(context.client!, "api"))[0]?.health === "critical");
  assert.is(running.status()[0]?.health, "critical");
  await waitFor("api expired", async () => (await instances(context.client!, "api")).length === 0, 6_000);
  backend.setHealthy(true);
  await waitFor("api back", async () => (await instances(context.client!, "api"))[0]?.health === "passing");
  // The new lease is renewed again: still there after more than its ttl.
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  assert.is((await instances(context.client!, "api"))[0]?.health, "passing");
});

registration("recovering near the end of its lease: the lease is renewed at once, not lost", async (context) => {
  if (!tools) return;
  const backend = await startBackend();
  context.cleanups.push(() => new Promise((resolve) => backend.server.close(resolve)));
  const address = `127.0.0.1:${backend.port}`;
  backend.setHealthy(false);
  run(context, [
    service({
      name: "late",
      id: "late-1",
      address,
      check: { http: `http://${address}/`, interval: "50ms", timeout: "500ms" },
      ttl: "6s",
    }),
  ]);
  await waitFor("late critical", async () => (await instances(context.client!, "late"))[0]?.health === "critical");
  const [critical] = (await context.client!.range("/services/late/late-1")).kvs;
  // Let the un-renewed lease run down to about a second, then recover on it.
  await waitFor(
    "lease nearly expired",
    async () => (await context.client!.leaseTimeToLive(critical!.lease)).ttlSeconds <= 1,
    8_000,
  );
  backend.setHealthy(true);
  await waitFor("late passing", async () => (await instances(context.client!, "late"))[0]?.health === "passing");
  const [passing] = (await context.client!.range("/services/late/late-1")).kvs;
  if (passing!.lease === critical!.lease) {
    const ttl = await context.client!.leaseTimeToLive(passing!.lease);
    assert.ok(ttl.ttlSeconds >= 4, `the recovered lease was renewed (${ttl.ttlSeconds} s left)`);
  }
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  assert.is((await instances(context.client!, "late"))[0]?.health, "passing", "still registered after the old expiry");
});

registration(
  "the lease is granted while the first checks decide, so a new instance costs one write",
  async (context) => {
    if (!tools) return;
    const running = run(context, [
      service({
        name: "slow",
        id: "slow-1",
        address: "127.0.0.1:9",
        check: { exec: ["true"], interval: "300ms", timeout: "1s", healthy_threshold: 3 },
        ttl: "5s",
      }),
    ]);
    const pending = await waitFor("a lease while pending", async () => {
      const [status] = running.status();
      return status?.health === "pending" && status.leaseId !== undefined ? status : undefined;
    });
    assert.equal(await instances(context.client!, "slow"), [], "not announced before the threshold");
    await waitFor("slow passing", async () => (await instances(context.client!, "slow"))[0]?.health === "passing");
    const [kv] = (await context.client!.range("/services/slow/slow-1")).kvs;
    assert.is(kv?.lease, pending.leaseId, "announced on the lease granted up front");
  },
);

registration("an instance failing from the start is shown as critical, never as passing", async (context) => {
  if (!tools) return;
  run(context, [
    service({
      name: "broken",
      address: "127.0.0.1:9",
      check: { exec: ["node", "-e", "process.exit(1)"], interval: "100ms", timeout: "2s" },
      ttl: "3s",
    }),
  ]);
  await waitFor("broken listed", async () => (await instances(context.client!, "broken"))[0]?.health === "critical");
});

registration("store unreachable: checks go on; on reconnect the instance is registered again", async (context) => {
  if (!tools) return;
  const proxy = await startTcpProxy(context.etcd!.clientUrl);
  const viaProxy = new StoreClient({ endpoints: [proxy.url], requestTimeoutMs: 500, connectTimeoutMs: 500 });
  context.cleanups.push(
    () => proxy.close(),
    () => viaProxy.close(),
  );
  const running = run(
    context,
    [
      service({
        name: "db",
        id: "db-1",
        address: "127.0.0.1:5432",
        check: { exec: ["true"], interval: "50ms", timeout: "1s" },
        ttl: "2s",
      }),
    ],
    viaProxy,
  );
  await waitFor("db registered", async () => (await instances(context.client!, "db")).length === 1);
  proxy.pause();
  await waitFor("outage noticed", async () => running.status()[0]?.storeReachable === false, 5_000);
  const checkedAt = running.status()[0]?.lastCheck?.at;
  // Long enough for the lease to expire in etcd while the agent cannot renew it.
  await waitFor("lease expired", async () => (await instances(context.client!, "db")).length === 0, 8_000);
  assert.is.not(running.status()[0]?.lastCheck?.at, checkedAt, "health checks kept running during the outage");
  proxy.resume();
  await waitFor("db registered again", async () => (await instances(context.client!, "db"))[0]?.health === "passing");
  assert.is(running.status()[0]?.storeReachable, true);
});

/** The real client, with a record of the registration calls made through it: [method, lease of the call]. */
function recording(client: StoreClient): { store: RegistryStore; calls: Array<[string, string | undefined]> } {
  const calls: Array<[string, string | undefined]> = [];
  const store: RegistryStore = {
    put: (key, value, options) => {
      calls.push(["put", options?.lease === undefined ? undefined : String(options.lease)]);
      return client.put(key, value, options);
    },
    leaseGrant: async (ttl, id) => {
      const lease = await client.leaseGrant(ttl, id);
      calls.push(["grant", lease.id]);
      return lease;
    },
    leaseKeepAliveOnce: (id) => {
      calls.push(["keepalive", String(id)]);
      return client.leaseKeepAliveOnce(id);
    },
    leaseRevoke: (id) => {
      calls.push(["revoke", String(id)]);
      return client.leaseRevoke(id);
    },
  };
  return { store, calls };
}

/** One instance whose backend starts failing, registered through a store that records its calls. */
async function failingInstanceRecorded(context: Context, name: string, ttl: string) {
  const backend = await startBackend();
  context.cleanups.push(() => new Promise((resolve) => backend.server.close(resolve)));
  backend.setHealthy(false);
  const address = `127.0.0.1:${backend.port}`;
  const { store, calls } = recording(context.client!);
  const running = startServices({
    services: [
      service({
        name,
        id: `${name}-1`,
        address,
        check: { http: `http://${address}/`, interval: "50ms", timeout: "500ms" },
        ttl,
      }),
    ],
    client: store,
    logger: silentLogger(),
  });
  context.cleanups.push(() => running.stop());
  await waitFor(`${name} critical`, async () => (await instances(context.client!, name))[0]?.health === "critical");
  return { backend, calls, running };
}

registration(
  "the first passing check costs the store one put: no renewal of the fresh lease with it",
  async (context) => {
    if (!tools) return;
    const { backend, calls } = await failingInstanceRecorded(context, "fresh", "30s");
    // The critical entry's lease is left to run down; a standby lease is granted for the recovery.
    await waitFor("a standby lease", async () => calls.filter(([method]) => method === "grant").length === 2);
    const standby = calls.filter(([method]) => method === "grant")[1]![1];
    const before = calls.length;
    backend.setHealthy(true);
    await waitFor("fresh passing", async () => (await instances(context.client!, "fresh"))[0]?.health === "passing");
    // A 30 s lease is renewed every 10 s: no timer fired here, so any renewal would have come with the write.
    assert.equal(calls.slice(before), [["put", standby]]);
    const [kv] = (await context.client!.range("/services/fresh/fresh-1")).kvs;
    assert.is(kv?.lease, standby);
  },
);

registration("recovering after the critical entry expired costs one put on the standby lease", async (context) => {
  if (!tools) return;
  const { backend, calls, running } = await failingInstanceRecorded(context, "gone", "2s");
  await waitFor("critical entry expired", async () => (await instances(context.client!, "gone")).length === 0, 6_000);
  const before = calls.length;
  backend.setHealthy(true);
  await waitFor("gone passing", async () => (await instances(context.client!, "gone"))[0]?.health === "passing");
  // Renewals of the standby lease may come and go meanwhile; the recovery itself needs no grant and one put.
  const recovery = calls.slice(before).filter(([method]) => method !== "keepalive");
  assert.is(recovery.length, 1, JSON.stringify(recovery));
  assert.is(recovery[0]![0], "put");
  const [kv] = (await context.client!.range("/services/gone/gone-1")).kvs;
  assert.is(kv?.lease, recovery[0]![1]);
  await running.stop();
  assert.equal(await instances(context.client!, "gone"), [], "stop() revokes the lease the entry is on");
});

registration("stop() while critical removes the critical entry at once", async (context) => {
  if (!tools) return;
  const running = run(context, [
    service({
      name: "down",
      id: "down-1",
      address: "127.0.0.1:9",
      check: { exec: ["false"], interval: "50ms", timeout: "1s" },
      ttl: "30s",
    }),
  ]);
  await waitFor("down critical", async () => (await instances(context.client!, "down"))[0]?.health === "critical");
  await running.stop();
  assert.equal(await instances(context.client!, "down"), [], "the critical entry's lease is revoked too");
});

registration("two instances with the same id are refused before anything starts", async (context) => {
  if (!tools) return;
  assert.throws(
    () =>
      run(context, [
        service({ name: "web", address: "127.0.0.1:8081" }),
        service({ name: "web", address: "127.0.0.1:8081" }),
      ]),
    /services\[1\]: instance web\/web-127.0.0.1-8081 is already declared by services\[0\]/,
  );
});

registration(
  "an id longer than templates accept is refused, not registered and silently left out of them",
  async (context) => {
    if (!tools) return;
    const name = `web-${"x".repeat(120)}`;
    assert.throws(
      () => run(context, [service({ name, address: "127.0.0.1:8081" })]),
      /services\[0\]: instance id "web-x+-127\.0\.0\.1-8081" is longer than 128 characters/,
    );
    assert.throws(
      () => run(context, [service({ name: "web", id: "i".repeat(129), address: "127.0.0.1:8081" })]),
      /services\[0\]: instance id "i+" is longer than 128 characters; give a shorter id/,
    );
  },
);

registration(
  "a ttl, check timeout or check interval of 0 is a config error, not a crash or a busy loop",
  async (context) => {
    if (!tools) return;
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ttl: 0 }, /services\[0\]\.ttl: must be more than 0/],
      [{ check: { tcp: "127.0.0.1:9", timeout: 0 } }, /services\[0\]\.check\.timeout: must be more than 0/],
      [{ check: { tcp: "127.0.0.1:9", interval: 0 } }, /services\[0\]\.check\.interval: must be at least 10 ms/],
    ];
    for (const [fields, message] of cases) {
      assert.throws(() => run(context, [service({ name: "web", address: "127.0.0.1:8081", ...fields })]), message);
    }
  },
);

registration.run();
