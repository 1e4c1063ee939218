// Scenario "DB failover", end to end with real programs on loopback:
//   three agents form the store; next to each runs a PHP app (examples/php-app/app.php) that loads db.php at start
//   and again only on SIGHUP, like php-fpm; each agent renders templates/db.php.hbs for its app (`php -l` as the
//   check) and signals it by pidfile. Changing /db/sql_master makes every app's next request use the new master.
//   Then the store leader is killed (-9) in the middle of the next change: every write the store acknowledged is
//   still there, the change reaches every surviving app, and the killed agent, restarted on its data, catches up.
// The assertions are about what the apps answer, never about how fast (the "scenarios" benchmark measures that).
import { readFile } from "node:fs/promises";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type StoreClient as Client, StoreClient } from "../../src/store/client.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { requireTools } from "../helpers/require-tool.js";
import {
  embeddedTopology,
  etcdTopology,
  httpText,
  type Managed,
  putAcknowledged,
  Scene,
  type StoreTopology,
  TEMPLATES_DIR,
} from "./scenario-kit.js";

interface AppAnswer {
  pid: number;
  reloads: number;
  db: { host: string; user: string; revision: number };
}

async function ask(port: number): Promise<AppAnswer | undefined> {
  const text = await httpText(`http://127.0.0.1:${port}/`);
  return text === undefined ? undefined : (JSON.parse(text) as AppAnswer);
}

/** Name of the member that is the Raft leader, asked of every live endpoint. */
async function leaderName(client: Client, endpoints: string[]): Promise<string> {
  const { members } = await client.memberList();
  for (const endpoint of endpoints) {
    const status = await client.status(endpoint).catch(() => undefined);
    if (status === undefined || status.leader === "0") continue;
    const leader = members.find((member) => member.id === status.leader);
    if (leader !== undefined) return leader.name;
  }
  throw new Error("no member knows a leader");
}

function defineFailover(kind: StoreTopology["kind"], tools: Record<string, string>) {
  const scenario = suite(`scenario DB failover (${kind} store)`);
  let scene: Scene | undefined;
  let topology: StoreTopology | undefined;
  let client: StoreClient | undefined;

  scenario.after(async () => {
    await client?.close();
    await scene?.cleanup();
    await topology?.close();
  });

  scenario("every PHP app follows /db/sql_master, through a leader kill", async () => {
    scene = new Scene(`db-failover-${kind}`);
    const names = ["a1", "a2", "a3"];
    topology = kind === "embedded" ? await embeddedTopology(scene, names) : await etcdTopology();
    client = new StoreClient({ endpoints: topology.endpoints, requestTimeoutMs: 2_000, connectTimeoutMs: 500 });
    const agents = new Map<string, Managed>();
    const appPorts = new Map<string, number>();
    const agentArgs = new Map<string, string[]>();
    for (const name of names) scene.mkdir(name, "app");
    const agentConfig = (name: string) => ({
      log_level: "debug",
      templates: [
        {
          source: `${TEMPLATES_DIR}/db.php.hbs`,
          destination: scene!.path(name, "app", "db.php"),
          mode: "0640",
          check: [tools.php, "-l", "{{src}}"],
          reload: { signal: "SIGHUP", pidfile: scene!.path(name, "app", "app.pid"), process: "app.php" },
        },
      ],
    });
    try {
      for (const name of names) {
        agentArgs.set(name, topology.founderArgs(name));
        agents.set(name, scene.startAgent(name, agentConfig(name), agentArgs.get(name)));
      }
      await putAcknowledged(client, "/db/user", "app");
      await putAcknowledged(client, "/db/password", "it's secret");
      await putAcknowledged(client, "/db/sql_master", "10.0.0.1");

      for (const name of names) {
        const dbPhp = scene.path(name, "app", "db.php");
        await waitFor(
          `${name} renders db.php`,
          async () => (await readFile(dbPhp, "utf8")).includes("'10.0.0.1'"),
          30_000,
        );
        appPorts.set(name, await freePort());
        await scene.startPhpApp(name, appPorts.get(name)!, dbPhp, scene.path(name, "app", "app.pid"), tools.php);
      }
      const first = new Map<string, AppAnswer>();
      for (const name of names) {
        const answer = await ask(appPorts.get(name)!);
        assert.is(answer?.db.host, "10.0.0.1");
        assert.is(answer?.db.user, "app");
        first.set(name, answer!);
      }

      // The failover: one key changes, every app reloads (same process, new config).
      await putAcknowledged(client, "/db/sql_master", "10.0.0.2");
      for (const name of names) {
        const answer = await waitFor(
          `${name}'s app on 10.0.0.2`,
          async () => {
            const now = await ask(appPorts.get(name)!);
            return now?.db.host === "10.0.0.2" ? now : undefined;
          },
          15_000,
        );
        assert.is(answer.pid, first.get(name)!.pid, "reloaded, not restarted");
        assert.ok(answer.reloads >= 1);
      }

      if (kind !== "embedded") return;

      // The leader dies in the middle of the next change. Writes go on through the other members.
      const victim = await leaderName(client, topology.endpoints);
      const survivors = names.filter((name) => name !== victim);
      const survivorClient = new StoreClient({
        endpoints: survivors.map((name) => topology!.clientUrlOf(name)!),
        requestTimeoutMs: 2_000,
        connectTimeoutMs: 500,
      });
      try {
        // Audit writes stream through the survivors; the leader is killed after the 10th, and the master change is
        // the very next write, so it goes out while the cluster has no leader and must wait for the election.
        const acknowledged: string[] = [];
        let leaderKilled: () => void = () => undefined;
        const killed = new Promise<void>((resolve) => {
          leaderKilled = resolve;
        });
        let reachedKillPoint: () => void = () => undefined;
        const killPoint = new Promise<void>((resolve) => {
          reachedKillPoint = resolve;
        });
        const writes = (async () => {
          for (let i = 0; i < 30; i++) {
            const key = `/db/audit/${String(i).padStart(3, "0")}`;
            await putAcknowledged(survivorClient, key, `change ${i}`);
            acknowledged.push(key);
            if (i === 10) {
              reachedKillPoint();
              await killed;
              await putAcknowledged(survivorClient, "/db/sql_master", "10.0.0.3");
            }
          }
        })();
        // (A failing write ends the wait too, instead of hanging the test.)
        await Promise.race([killPoint, writes]);
        await agents.get(victim)!.stop("SIGKILL");
        leaderKilled();
        await writes;

        for (const name of survivors) {
          await waitFor(
            `${name}'s app on 10.0.0.3`,
            async () => (await ask(appPorts.get(name)!))?.db.host === "10.0.0.3",
            20_000,
          );
        }
        const { kvs } = await survivorClient.range("/db/audit/", { prefix: true });
        assert.equal(
          kvs.map((kv) => kv.key.toString()),
          acknowledged,
          "every acknowledged write survived the leader kill",
        );

        // The killed agent comes back on its data dir, catches up, and brings its app along.
        agents.set(victim, scene.startAgent(victim, agentConfig(victim), agentArgs.get(victim)));
        await waitFor(
          `${victim}'s app on 10.0.0.3 after its agent restarted`,
          async () => (await ask(appPorts.get(victim)!))?.db.host === "10.0.0.3",
          30_000,
        );
      } finally {
        await survivorClient.close();
      }
    } catch (error) {
      console.error(scene.describe());
      throw error;
    }
  });

  return scenario;
}

const embeddedTools = requireTools("scenario DB failover (embedded store)", "php");
if (embeddedTools) defineFailover("embedded", embeddedTools).run();
const etcdTools = requireTools("scenario DB failover (etcd store)", "php", "etcd");
if (etcdTools) defineFailover("etcd", etcdTools).run();
