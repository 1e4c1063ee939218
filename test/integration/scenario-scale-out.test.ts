// Scenario "scale-out", end to end with real programs on loopback:
//   three agents form the store, each next to a `web` backend it registers and health-checks; agent a1 renders
//   templates/haproxy.cfg.hbs for a real haproxy and reloads it (through its master CLI: examples/haproxy/reload.mjs);
//   a fourth backend arrives with its own agent (a learner joining with --join) → haproxy routes to it;
//   that backend is killed → it drops out once its check fails; an agent stopped with SIGTERM deregisters its
//   instance at once (its ttl is far longer than the test waits).
// The assertions are about where requests go, never about how fast (the "scenarios" benchmark measures that).
import { readFile } from "node:fs/promises";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { StoreClient } from "../../src/store/client.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { requireTools } from "../helpers/require-tool.js";
import {
  backendsBehind,
  embeddedTopology,
  etcdTopology,
  haproxyReload,
  type Managed,
  Scene,
  type StoreTopology,
  TEMPLATES_DIR,
} from "./scenario-kit.js";

/** Health checks fast enough that the scenario takes seconds, with a threshold so one slow answer does not flap. */
function webService(id: string, port: number, ttl = "3s") {
  return {
    name: "web",
    id,
    address: `127.0.0.1:${port}`,
    check: { http: `http://127.0.0.1:${port}/health`, interval: "100ms", timeout: "500ms", unhealthy_threshold: 2 },
    ttl,
  };
}

/** What haproxy runs with before the agent's first render: valid, no servers (503 for every request). */
function bootstrapHaproxyConfig(bind: string): string {
  return [
    "defaults",
    "    mode http",
    "    timeout connect 5s",
    "    timeout client 30s",
    "    timeout server 30s",
    "frontend front",
    `    bind ${bind}`,
    "    default_backend back",
    "backend back",
    "",
  ].join("\n");
}

function defineScaleOut(kind: StoreTopology["kind"], tools: Record<string, string>) {
  const scenario = suite(`scenario scale-out (${kind} store)`);
  let scene: Scene | undefined;
  let topology: StoreTopology | undefined;
  let client: StoreClient | undefined;

  scenario.after(async () => {
    await client?.close();
    await scene?.cleanup();
    await topology?.close();
  });

  scenario("haproxy follows the web service as backends come and go", async () => {
    scene = new Scene(`scale-out-${kind}`);
    const founders = ["a1", "a2", "a3"];
    topology = kind === "embedded" ? await embeddedTopology(scene, founders) : await etcdTopology();
    client = new StoreClient({ endpoints: topology.endpoints, requestTimeoutMs: 2_000 });
    const frontUrl = `http://127.0.0.1:${await freePort()}/`;
    const haproxyConfig = scene.path("lb", "haproxy.cfg");
    const haproxyPidfile = scene.path("lb", "haproxy.pid");
    scene.writeFile("lb/haproxy.cfg", bootstrapHaproxyConfig(new URL(frontUrl).host));
    const haproxy = await scene.startHaproxy(haproxyConfig, haproxyPidfile, tools.haproxy);

    const ports = new Map<string, number>();
    const backends = new Map<string, Managed>();
    for (const id of ["web-1", "web-2", "web-3", "web-4"]) ports.set(id, await freePort());
    const agents = new Map<string, Managed>();
    try {
      for (const [index, name] of founders.entries()) {
        const id = `web-${index + 1}`;
        backends.set(id, await scene.startBackend(id, ports.get(id)!));
        // web-3's instance outlives the whole test unless its agent revokes the lease on SIGTERM.
        const services = [webService(id, ports.get(id)!, id === "web-3" ? "120s" : "3s")];
        const templates =
          name === "a1"
            ? [
                {
                  source: `${TEMPLATES_DIR}/haproxy.cfg.hbs`,
                  destination: haproxyConfig,
                  check: [tools.haproxy, "-c", "-q", "-f", "{{src}}"],
                  reload: haproxyReload(haproxyPidfile),
                },
              ]
            : [];
        const env = name === "a1" ? { VIGIE_HAPROXY_BIND: new URL(frontUrl).host, VIGIE_SERVICE: "web" } : {};
        agents.set(
          name,
          scene.startAgent(name, { log_level: "debug", services, templates }, topology.founderArgs(name), { env }),
        );
      }

      await waitFor(
        "haproxy routing to web-1, web-2 and web-3",
        async () => sameSet((await backendsBehind(frontUrl, 9)).names, ["web-1", "web-2", "web-3"]),
        30_000,
      );

      // Scale out: a fourth backend with its own agent, joining the store as a learner.
      backends.set("web-4", await scene.startBackend("web-4", ports.get("web-4")!));
      agents.set(
        "a4",
        scene.startAgent(
          "a4",
          { log_level: "debug", services: [webService("web-4", ports.get("web-4")!)] },
          await topology.joinerArgs("a4"),
        ),
      );
      await waitFor(
        "haproxy routing to web-4 too",
        async () => sameSet((await backendsBehind(frontUrl, 12)).names, ["web-1", "web-2", "web-3", "web-4"]),
        30_000,
      );
      if (kind === "embedded") {
        const { members } = await client.memberList();
        const a4 = members.find((member) => member.name === "a4");
        assert.ok(a4 !== undefined, `a4 is a member: ${JSON.stringify(members)}`);
        assert.ok(a4.isLearner, "a4 joined as a learner (the cluster already has its 3 voters)");
      }

      // The new backend dies (its agent lives on): its check fails, it is marked critical and leaves haproxy.
      await backends.get("web-4")!.stop("SIGKILL");
      await waitFor(
        "web-4 gone from haproxy.cfg",
        async () => !(await readFile(haproxyConfig, "utf8")).includes("server web-4 "),
        30_000,
      );
      // haproxy has no health checks of its own here: only vigie can take the dead server out of rotation.
      await waitFor(
        "haproxy (reloaded) routing to web-1, web-2 and web-3 only, with no failure",
        async () => {
          const afterKill = await backendsBehind(frontUrl, 12);
          return afterKill.failures === 0 && sameSet(afterKill.names, ["web-1", "web-2", "web-3"]);
        },
        10_000,
      );
      const web4 = await client.get("/services/web/web-4");
      assert.ok(web4 === undefined || JSON.parse(web4).health === "critical", `web-4 is not passing: ${web4}`);

      // SIGTERM to a3: it deregisters web-3 (revokes its 120 s lease) before it stops.
      await agents.get("a3")!.stop("SIGTERM");
      assert.is(await client.get("/services/web/web-3"), undefined, "web-3 deregistered on SIGTERM");
      await waitFor(
        "web-3 gone from haproxy.cfg",
        async () => !(await readFile(haproxyConfig, "utf8")).includes("server web-3 "),
        10_000,
      );
      await waitFor(
        "haproxy routing to web-1 and web-2 only",
        async () => {
          const afterStop = await backendsBehind(frontUrl, 8);
          return afterStop.failures === 0 && sameSet(afterStop.names, ["web-1", "web-2"]);
        },
        10_000,
      );
      assert.ok(haproxy.alive(), "haproxy was reloaded, never restarted");
    } catch (error) {
      console.error(scene.describe());
      throw error;
    }
  });

  return scenario;
}

function sameSet(actual: Set<string>, expected: string[]): boolean {
  return actual.size === expected.length && expected.every((name) => actual.has(name));
}

const embeddedTools = requireTools("scenario scale-out (embedded store)", "haproxy");
if (embeddedTools) defineScaleOut("embedded", embeddedTools).run();
const etcdTools = requireTools("scenario scale-out (etcd store)", "haproxy", "etcd");
if (etcdTools) defineScaleOut("etcd", etcdTools).run();
