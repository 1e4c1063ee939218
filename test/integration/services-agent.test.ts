// The agent's side of registration, with the real `vigie agent` (client role) against a real etcd:
// SIGTERM deregisters at once (the lease is revoked before the agent exits); kill -9 leaves the entry until its
// lease expires, ttl after the last renewal.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { StoreClient } from "../../src/store/client.js";
import { type EtcdProcess, startEtcd } from "../helpers/etcd.js";
import { waitFor } from "../helpers/ports.js";
import { requireTools } from "../helpers/require-tool.js";
import { Scene } from "./scenario-kit.js";

interface Context {
  etcd: EtcdProcess | undefined;
  client: StoreClient | undefined;
  scene: Scene | undefined;
}
const agent = suite<Context>("services: vigie agent on SIGTERM and kill -9", {
  etcd: undefined,
  client: undefined,
  scene: undefined,
});
const tools = requireTools("services: vigie agent", "etcd");

agent.before(async (context) => {
  if (!tools) return;
  context.etcd = await startEtcd();
  context.client = new StoreClient({ endpoints: [context.etcd.clientUrl] });
  context.scene = new Scene("services-agent");
});

agent.after(async (context) => {
  await context.scene?.cleanup();
  await context.client?.close();
  await context.etcd?.stop();
});

function startAgent(context: Context, name: string, ttl: string) {
  return context.scene!.startAgent(name, { services: [{ name: "api", id: name, address: "127.0.0.1:9000", ttl }] }, [
    "--name",
    name,
    "--store-endpoints",
    context.etcd!.clientUrl,
  ]);
}

agent("SIGTERM: the instance is gone when the agent exits, long before its ttl", async (context) => {
  if (!tools) return;
  const agentProcess = startAgent(context, "api-term", "60s");
  await waitFor("api-term registered", async () => (await context.client!.get("/services/api/api-term")) !== undefined);
  await agentProcess.stop("SIGTERM");
  const exit = await agentProcess.exited;
  assert.is(exit.code, 0, agentProcess.output());
  assert.is(await context.client!.get("/services/api/api-term"), undefined, "deregistered before exiting");
});

agent("kill -9: the entry stays until its lease expires, then goes", async (context) => {
  if (!tools) return;
  const agentProcess = startAgent(context, "api-kill", "3s");
  await waitFor("api-kill registered", async () => (await context.client!.get("/services/api/api-kill")) !== undefined);
  const [kv] = (await context.client!.range("/services/api/api-kill")).kvs;
  await agentProcess.stop("SIGKILL");
  assert.ok(
    (await context.client!.get("/services/api/api-kill")) !== undefined,
    "nobody revoked it: still there right after the kill",
  );
  // A lease that is gone answers -1; the whole seconds left may read 0 when the agent's last renewal was late.
  const remaining = await context.client!.leaseTimeToLive(kv!.lease);
  assert.ok(
    remaining.ttlSeconds >= 0 && remaining.ttlSeconds <= 3,
    `expires within its ttl (${remaining.ttlSeconds} s)`,
  );
  await waitFor(
    "api-kill expired",
    async () => (await context.client!.get("/services/api/api-kill")) === undefined,
    8_000,
  );
});

agent.run();
