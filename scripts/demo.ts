// `npm run demo`: the whole picture on loopback, narrated step by step, in about half a minute.
//   - three vigie agents form an embedded Raft cluster;
//   - two tiny HTTP backends, each registered and health-checked by its agent;
//   - nginx (when installed) fronts them through an upstream file that agent a3 renders and reloads by SIGHUP;
//   - two PHP apps read db.php, rendered by their agents; one key change (/db/sql_master) reloads both;
//   - a third backend arrives with a fourth agent (a learner): nginx routes to it;
//   - a backend dies: it leaves the upstream once its check fails; an agent stopped with SIGTERM deregisters at once.
// Everything runs in one temp dir and is stopped and removed at the end, on Ctrl-C, or after DEMO_DEADLINE_MS.
import { readFile } from "node:fs/promises";
import { StoreClient } from "../src/store/client.js";
import { freePort, waitFor } from "../test/helpers/ports.js";
import { findExecutable } from "../test/helpers/require-tool.js";
import {
  embeddedTopology,
  httpText,
  type Managed,
  Scene,
  TEMPLATES_DIR,
  VIGIE_CLI,
} from "../test/integration/scenario-kit.js";

/** The demo never runs longer than this, whatever hangs. */
const DEMO_DEADLINE_MS = 120_000;
/** Each step waits at most this long for what it shows. */
const STEP_WAIT_MS = 20_000;

const bold = (text: string) => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);
const dim = (text: string) => (process.stdout.isTTY ? `\x1b[2m${text}\x1b[0m` : text);

let stepStartedAt = performance.now();
let stepNumber = 0;
function step(title: string): void {
  stepNumber++;
  stepStartedAt = performance.now();
  console.log(`\n${bold(`${stepNumber}. ${title}`)}`);
}
function since(): string {
  return `+${(performance.now() - stepStartedAt).toFixed(1)} ms`;
}
function say(text: string): void {
  console.log(`   ${text}`);
}

const scene = new Scene("demo");
let finishing: Promise<void> | undefined;
function finish(exitCode: number): Promise<void> {
  finishing ??= (async () => {
    console.log(dim("\n   stopping every process and removing the temp dir..."));
    await scene.cleanup().catch((error: unknown) => console.error(`cleanup: ${String(error)}`));
    process.exit(exitCode);
  })();
  return finishing;
}
process.once("SIGINT", () => void finish(130));
process.once("SIGTERM", () => void finish(143));
setTimeout(() => {
  console.error(`\ndemo: still running after ${DEMO_DEADLINE_MS / 1000} s; giving up`);
  void finish(1);
}, DEMO_DEADLINE_MS).unref();

/**
 * While the picture is being set up, renders and reloads fail on purpose (db.php needs /db/sql_master, which is not
 * set yet; nginx and the PHP apps are not running yet to be signalled); the previous file (none) stays, and vigie
 * retries on the next change. Those are counted, not narrated one by one.
 */
let startingUp = true;
let startupErrors = 0;

/** Turns the agents' JSON log lines into narration: files written, apps signalled, instances (de)registered. */
function narrator(agent: string): (line: string) => void {
  return (line) => {
    if (!line.startsWith("{")) return;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const where = dim(`[${since()}] ${agent}:`);
    switch (entry.msg) {
      case "file written":
        say(`${where} rewrote ${shortPath(String(entry.destination))} (store revision ${entry.revision})`);
        break;
      case "application reloaded":
        say(`${where} signalled pid ${entry.pid ?? "?"}: ${String(entry.target).replace(scene.dir, "…")}`);
        break;
      case "registered":
        say(`${where} registered ${entry.key} (health passing, lease ${entry.lease})`);
        break;
      case "marked critical; its lease is left to expire":
        say(`${where} rewrote ${entry.key} with health critical; its lease is no longer renewed`);
        break;
      case "deregistered (lease revoked)":
        say(`${where} deregistered ${entry.key} (lease revoked)`);
        break;
      case "health is now critical":
      case "health is now passing":
        say(`${where} ${entry.id} ${entry.msg} (${entry.check})`);
        break;
      default:
        if (entry.level !== undefined && Number(entry.level) >= 50 && startingUp) {
          startupErrors++;
        } else if (entry.level !== undefined && Number(entry.level) >= 50) {
          // Expected ones happen at start-up: db.php before /db/* is set, a reload before the app runs.
          const reason = String(entry.reason ?? entry.reloadError ?? "").replaceAll(scene.dir, "…");
          say(`${where} ${dim(`${String(entry.msg)}: ${reason.slice(0, 140)}`)}`);
        }
    }
  };
}

function shortPath(path: string): string {
  return path.replace(scene.dir, "…");
}

function nginxConfig(dir: string, port: number, upstreamFile: string): string {
  return `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
daemon off;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp-body;
  proxy_temp_path ${dir}/tmp-proxy;
  fastcgi_temp_path ${dir}/tmp-fastcgi;
  uwsgi_temp_path ${dir}/tmp-uwsgi;
  scgi_temp_path ${dir}/tmp-scgi;
  include ${upstreamFile};
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://backend; proxy_next_upstream error timeout; }
  }
}
`;
}

async function through(url: string, requests: number): Promise<string> {
  const names: string[] = [];
  for (let i = 0; i < requests; i++) names.push((await httpText(url))?.trim() ?? "(failed)");
  return names.join(" ");
}

/**
 * nginx finishes a reload asynchronously (new workers start, old ones drain), so the first requests after the
 * signal may still meet an old worker: wait until 6 requests in a row go only where they should, then show them.
 */
async function settled(url: string, expected: string[]): Promise<string> {
  return await waitFor(
    `nginx routing to ${expected.join(", ")} only`,
    async () => {
      const answered = await through(url, 6);
      return answered.split(" ").every((name) => expected.includes(name)) ? answered : undefined;
    },
    STEP_WAIT_MS,
  );
}

async function main(): Promise<void> {
  const nginx = findExecutable("nginx");
  const php = findExecutable("php");
  console.log(bold("vigie demo") + dim(` — everything below runs on 127.0.0.1, in ${scene.dir}`));
  if (!nginx) console.log(dim("   (nginx is not installed: the upstream file is rendered but nothing serves it)"));
  if (!php) console.log(dim("   (php is not installed: db.php is rendered but no PHP app reads it)"));

  const founders = ["a1", "a2", "a3"];
  const topology = await embeddedTopology(scene, founders);
  const client = new StoreClient({ endpoints: topology.endpoints, requestTimeoutMs: 2_000 });
  const webPorts = { "web-1": await freePort(), "web-2": await freePort(), "web-3": await freePort() };
  const appPorts = { a1: await freePort(), a2: await freePort() };
  const nginxPort = await freePort();
  const upstreamFile = scene.path("nginx", "upstream.conf");
  const webService = (id: keyof typeof webPorts) => ({
    name: "web",
    id,
    address: `127.0.0.1:${webPorts[id]}`,
    check: { http: `http://127.0.0.1:${webPorts[id]}/health`, interval: "200ms", timeout: "500ms" },
    ttl: "5s",
  });
  const dbTemplate = (agent: string) => ({
    source: `${TEMPLATES_DIR}/db.php.hbs`,
    destination: scene.path(agent, "app", "db.php"),
    ...(php ? { check: [php, "-l", "{{src}}"] } : {}),
    reload: { signal: "SIGHUP", pidfile: scene.path(agent, "app", "app.pid"), process: "app.php" },
  });

  // Destination directories must exist: vigie writes files, it does not invent directories.
  for (const dir of [["a1", "app"], ["a2", "app"], ["nginx"]]) scene.mkdir(...dir);
  try {
    step("Two tiny HTTP backends start (examples/backend/backend.mjs)");
    const backends = new Map<string, Managed>();
    for (const id of ["web-1", "web-2"] as const) {
      const backend = await scene.startBackend(id, webPorts[id]);
      backends.set(id, backend);
      say(`${id} listens on 127.0.0.1:${webPorts[id]} (pid ${backend.pid})`);
    }

    step("Three vigie agents form an embedded Raft cluster; a1 and a2 health-check and register the backends");
    const agents = new Map<string, Managed>();
    const configs: Record<string, Record<string, unknown>> = {
      a1: { services: [webService("web-1")], templates: [dbTemplate("a1")] },
      a2: { services: [webService("web-2")], templates: [dbTemplate("a2")] },
      a3: {
        templates: [
          {
            source: `${TEMPLATES_DIR}/nginx-upstream.conf.hbs`,
            destination: upstreamFile,
            ...(nginx
              ? { reload: { signal: "SIGHUP", pidfile: scene.path("nginx", "nginx.pid"), process: "nginx" } }
              : {}),
          },
        ],
      },
    };
    for (const name of founders) {
      agents.set(name, scene.startAgent(name, configs[name]!, topology.founderArgs(name), { onLine: narrator(name) }));
    }
    const leader = await waitFor(
      "a leader",
      async () => {
        const status = await client.status();
        if (status.leader === "0") return undefined;
        const { members } = await client.memberList();
        return members.find((member) => member.id === status.leader)?.name;
      },
      STEP_WAIT_MS,
    );
    say(`cluster up, leader is ${bold(leader)} (${since()})`);
    await waitFor(
      "two web instances",
      async () => (await client.range("/services/web/", { prefix: true })).kvs.length === 2,
      STEP_WAIT_MS,
    );
    say(
      `$ vigie services web\n${indent(await vigieCli("services", "web", "--endpoints", topology.endpoints.join(",")))}`,
    );

    await waitFor(
      "the upstream file",
      async () => (await readFile(upstreamFile, "utf8")).includes("# web-2"),
      STEP_WAIT_MS,
    );
    const nginxUrl = `http://127.0.0.1:${nginxPort}/`;
    if (nginx) {
      step("nginx starts with the upstream file a3 rendered");
      const config = scene.writeFile("nginx/nginx.conf", nginxConfig(scene.path("nginx"), nginxPort, upstreamFile));
      const server = scene.spawn("nginx", nginx, [
        "-c",
        config,
        "-p",
        scene.path("nginx"),
        "-e",
        scene.path("nginx", "error.log"),
      ]);
      await waitFor("nginx", async () => (await httpText(nginxUrl)) !== undefined, STEP_WAIT_MS);
      say(`nginx (pid ${server.pid}) on ${nginxUrl}; 4 requests went to: ${await through(nginxUrl, 4)}`);
    }

    step("The database settings go into the store; each agent renders db.php for its PHP app");
    await client.put("/db/user", "app");
    await client.put("/db/password", "s3cret");
    await client.put("/db/sql_master", "10.0.0.1");
    for (const agent of ["a1", "a2"] as const) {
      const dbPhp = scene.path(agent, "app", "db.php");
      await waitFor(`${agent} db.php`, async () => (await readFile(dbPhp, "utf8")).includes("10.0.0.1"), STEP_WAIT_MS);
    }
    const reloadedAt = new Map<string, number>();
    for (const agent of ["a1", "a2"] as const) {
      if (!php) break;
      const dbPhp = scene.path(agent, "app", "db.php");
      const app = await scene.startPhpApp(agent, appPorts[agent], dbPhp, scene.path(agent, "app", "app.pid"), php);
      app.child.stdout?.on("data", (chunk: Buffer) => {
        if (chunk.toString().startsWith("reloaded")) reloadedAt.set(agent, performance.now());
      });
      const answer = await httpText(`http://127.0.0.1:${appPorts[agent]}/`);
      say(`PHP app next to ${agent} (pid ${app.pid}) uses ${JSON.parse(answer ?? "{}").db?.host}`);
    }

    startingUp = false;
    if (startupErrors > 0) {
      say(
        dim(
          `(${startupErrors} renders or reloads failed while setting up, as expected: db.php before ` +
            "/db/sql_master existed, signals before nginx and the apps ran; each time the previous file stayed)",
        ),
      );
    }

    step(`Failover: ${bold("vigie put /db/sql_master 10.0.0.2")}`);
    const putAt = performance.now();
    await client.put("/db/sql_master", "10.0.0.2");
    say(`${dim(`[${since()}]`)} put acknowledged by the cluster`);
    for (const agent of ["a1", "a2"] as const) {
      const dbPhp = scene.path(agent, "app", "db.php");
      if (php) {
        await waitFor(`${agent}'s app reloaded`, async () => reloadedAt.has(agent), STEP_WAIT_MS);
        const answer = JSON.parse((await httpText(`http://127.0.0.1:${appPorts[agent]}/`)) ?? "{}");
        say(
          `PHP app next to ${agent} now uses ${bold(answer.db?.host)} ` +
            `(reloaded ${(reloadedAt.get(agent)! - putAt).toFixed(1)} ms after the put)`,
        );
      } else {
        await waitFor(
          `${agent} db.php`,
          async () => (await readFile(dbPhp, "utf8")).includes("10.0.0.2"),
          STEP_WAIT_MS,
        );
      }
    }

    step("Scale out: backend web-3 starts with its own agent a4, which joins the cluster as a learner");
    await scene.startBackend("web-3", webPorts["web-3"]);
    agents.set(
      "a4",
      scene.startAgent("a4", { services: [webService("web-3")] }, await topology.joinerArgs("a4"), {
        onLine: narrator("a4"),
      }),
    );
    await waitFor(
      "web-3 upstream",
      async () => (await readFile(upstreamFile, "utf8")).includes("# web-3"),
      STEP_WAIT_MS,
    );
    if (nginx) {
      await waitFor("nginx routes to web-3", async () => (await through(nginxUrl, 6)).includes("web-3"), STEP_WAIT_MS);
      say(`6 requests through nginx went to: ${await through(nginxUrl, 6)}`);
    }
    const { members } = await client.memberList();
    say(`members: ${members.map((member) => `${member.name}${member.isLearner ? " (learner)" : ""}`).join(", ")}`);

    step("Backend web-1 dies (kill -9); its agent sees the check fail and marks it critical");
    await backends.get("web-1")!.stop("SIGKILL");
    await waitFor("web-1 out", async () => !(await readFile(upstreamFile, "utf8")).includes("# web-1"), STEP_WAIT_MS);
    if (nginx) say(`6 requests through nginx went to: ${await settled(nginxUrl, ["web-2", "web-3"])}`);
    say(
      `$ vigie services web --all\n${indent(await vigieCli("services", "web", "--all", "--endpoints", topology.endpoints.join(",")))}`,
    );

    step("Agent a4 gets SIGTERM: it deregisters web-3 first (revokes its lease), then stops");
    await agents.get("a4")!.stop("SIGTERM");
    await waitFor("web-3 out", async () => !(await readFile(upstreamFile, "utf8")).includes("# web-3"), STEP_WAIT_MS);
    if (nginx) say(`6 requests through nginx went to: ${await settled(nginxUrl, ["web-2"])}`);

    await client.close();
    console.log(`\n${bold("Done.")} Run it yourself: README.md, "A short tour".`);
  } catch (error) {
    console.error(`\ndemo failed: ${(error as Error).message}\n${scene.describe()}`);
    await client.close();
    await finish(1);
  }
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split("\n")
    .map((line) => `     ${line}`)
    .join("\n");
}

async function vigieCli(...args: string[]): Promise<string> {
  const { execFile } = await import("node:child_process");
  return await new Promise((resolve) => {
    execFile(process.execPath, [VIGIE_CLI, ...args], { timeout: 10_000 }, (error, stdout, stderr) => {
      resolve(error ? `${stdout}${stderr}` : stdout);
    });
  });
}

await main();
await finish(0);
