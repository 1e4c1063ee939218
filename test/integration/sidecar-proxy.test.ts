// Scale-out against a real etcd and the embedded store: a real nginx and a real haproxy (non-daemon children, temp prefix dirs, loopback
// ports) proxy to tiny HTTP backends listed under /services/web/. After a put that changes the list, requests go to
// the new backend. Both reload through their pidfiles (nginx: SIGHUP; haproxy master-worker: SIGUSR2).
import { type ChildProcess, spawn } from "node:child_process";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { createServer, get, type Server } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  createHarness,
  type Harness,
  REPO_TEMPLATES,
  STORE_KINDS,
  type StoreKind,
  sharedStore,
  storeAvailable,
} from "../fixtures/sidecar/harness.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { requireTools } from "../helpers/require-tool.js";

const tools = requireTools("sidecar nginx/haproxy", "etcd", "nginx", "haproxy");

function defineSuite(kind: StoreKind): void {
  const test = suite(`sidecar nginx/haproxy (${kind})`);
  let h: Harness;
  const store = sharedStore(test, kind, tools !== undefined);
  const children: ChildProcess[] = [];
  const servers: Server[] = [];

  test.before.each(async () => {
    if (tools) h = await createHarness(kind, store());
  });
  test.after.each(async () => {
    if (!tools) return;
    for (const child of children.splice(0)) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((r) => child.once("exit", r));
      // SIGTERM first: a SIGKILLed nginx or haproxy master leaves its workers running (and holding the port).
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await exited;
      clearTimeout(timer);
    }
    for (const server of servers.splice(0)) await new Promise((r) => server.close(r));
    await h.cleanup();
  });

  function t(name: string, body: () => Promise<void>) {
    test(name, async () => {
      if (tools) await body();
    });
  }

  /** A backend that answers its own name, so a response shows which backend the proxy chose. */
  async function backend(name: string): Promise<number> {
    const server = createServer((_request, response) => {
      response.setHeader("connection", "close");
      response.end(name);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    servers.push(server);
    const address = server.address();
    if (address === null || typeof address !== "object") throw new Error("no address");
    return address.port;
  }

  async function register(id: string, port: number, health = "passing"): Promise<void> {
    const value = { address: `127.0.0.1:${port}`, host: "127.0.0.1", port, tags: [], meta: {}, health };
    await h.client.put(`/services/web/${id}`, JSON.stringify(value));
  }

  /** One request on a fresh connection (no keep-alive): the body, or an error text. */
  async function request(port: number): Promise<string> {
    return await new Promise((resolveBody) => {
      const req = get({ host: "127.0.0.1", port, path: "/", agent: false, timeout: 2000 }, (response) => {
        let body = "";
        response.on("data", (chunk: Buffer) => {
          body += chunk.toString();
        });
        response.on("end", () => resolveBody(response.statusCode === 200 ? body : `HTTP ${response.statusCode}`));
      });
      req.on("error", (error) => resolveBody(`error: ${error.message}`));
      req.on("timeout", () => req.destroy(new Error("timeout")));
    });
  }

  async function requests(port: number, count: number): Promise<string[]> {
    const bodies: string[] = [];
    for (let i = 0; i < count; i++) bodies.push(await request(port));
    return bodies;
  }

  /** haproxy's answer to one master CLI command; "" while the socket is not there or refuses. */
  async function masterCli(socketPath: string, command: string): Promise<string> {
    return await new Promise((resolveAnswer) => {
      const socket = connect(socketPath);
      let answer = "";
      socket.setTimeout(2000, () => socket.destroy());
      socket.on("connect", () => socket.end(`${command}\n`));
      socket.on("data", (chunk: Buffer) => {
        answer += chunk.toString();
      });
      socket.on("error", () => undefined);
      socket.on("close", () => resolveAnswer(answer));
    });
  }

  function startChild(program: string, args: string[]): ChildProcess {
    const child = spawn(program, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    child.once("exit", (code) => {
      if (code !== 0 && code !== null) console.error(`${program} exited ${code}: ${stderr}`);
    });
    children.push(child);
    return child;
  }

  t("nginx follows the store's backend list", async () => {
    const prefix = join(h.dir, "nginx");
    await mkdir(join(prefix, "tmp"), { recursive: true });
    const port = await freePort();
    const web1 = await backend("web-1");
    const web2 = await backend("web-2");
    await register("web-1", web1);
    await register("web-3", await backend("web-3"), "critical");
    await copyFile(join(REPO_TEMPLATES, "nginx-upstream.conf.hbs"), join(h.dir, "upstream.hbs"));
    const temps = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
      .map((kind) => `  ${kind}_temp_path ${join(prefix, "tmp", kind)};`)
      .join("\n");
    await writeFile(
      join(prefix, "nginx.conf"),
      `daemon off;\nworker_processes 1;\npid ${join(prefix, "nginx.pid")};\nerror_log ${join(prefix, "error.log")} warn;\n` +
        `events { worker_connections 64; }\nhttp {\n  access_log off;\n${temps}\n  include ${join(prefix, "upstream.conf")};\n` +
        `  server {\n    listen 127.0.0.1:${port};\n    location / { proxy_pass http://backend; }\n  }\n}\n`,
    );
    const sidecar = await h.start({
      templates: [
        {
          source: "upstream.hbs",
          destination: join(prefix, "upstream.conf"),
          reload: { signal: "SIGHUP", pidfile: join(prefix, "nginx.pid"), process: "nginx: master" },
        },
      ],
    });
    await sidecar.firstRender;
    await h.waitForFile(join(prefix, "upstream.conf"), (text) => text.includes(`127.0.0.1:${web1}`));
    const nginxArgs = ["-p", prefix, "-c", join(prefix, "nginx.conf"), "-e", join(prefix, "error.log")];
    startChild(tools!.nginx!, nginxArgs);
    await waitFor("nginx to proxy to web-1", async () => (await request(port)) === "web-1");

    await register("web-2", web2);
    await h.client.deleteRange("/services/web/web-1");
    const upstream = await h.waitForFile(
      join(prefix, "upstream.conf"),
      (text) => text.includes(`127.0.0.1:${web2}`) && !text.includes(`127.0.0.1:${web1}`),
    );
    assert.not.match(upstream, "web-3");
    await waitFor("nginx to proxy to web-2 only", async () => (await requests(port, 4)).every((b) => b === "web-2"));
  });

  t("haproxy follows the store's backend list, its config checked with haproxy -c", async () => {
    const dir = join(h.dir, "haproxy");
    await mkdir(dir);
    const port = await freePort();
    process.env.VIGIE_HAPROXY_BIND = `127.0.0.1:${port}`;
    const web1 = await backend("web-1");
    const web2 = await backend("web-2");
    await register("web-1", web1);
    await copyFile(join(REPO_TEMPLATES, "haproxy.cfg.hbs"), join(h.dir, "haproxy.hbs"));
    const config = join(dir, "haproxy.cfg");
    const pidfile = join(dir, "haproxy.pid");
    const sidecar = await h.start({
      templates: [
        {
          source: "haproxy.hbs",
          destination: config,
          check: [tools!.haproxy!, "-c", "-q", "-f", "{{src}}"],
          reload: { signal: "SIGUSR2", pidfile, process: "haproxy" },
        },
      ],
    });
    await sidecar.firstRender;
    await h.waitForFile(config, (text) => text.includes(`server web-1 127.0.0.1:${web1}`));
    const masterSocket = join(dir, "master.sock");
    startChild(tools!.haproxy!, ["-W", "-db", "-S", masterSocket, "-f", config, "-p", pidfile]);
    await waitFor("haproxy to proxy to web-1", async () => (await request(port)) === "web-1", 10_000);
    // The worker serves before the master handles signals, and a SIGUSR2 that arrives in between is lost (seen in
    // CI: no reload, the test timed out). "Loading success." is not the moment either: a SIGUSR2 sent right after it
    // was lost 20 times of 20 here (haproxy 2.6). Once the master answers on its CLI, its loop runs with its signal
    // handlers set: 0 of 20 lost.
    await waitFor("haproxy master CLI", async () => (await masterCli(masterSocket, "show proc")).includes("master"));

    await h.client.txn({
      success: [
        {
          put: "/services/web/web-2",
          value: JSON.stringify({ address: `127.0.0.1:${web2}`, host: "127.0.0.1", port: web2, health: "passing" }),
        },
        { deleteRange: "/services/web/web-1" },
      ],
    });
    await waitFor("haproxy to proxy to web-2 only", async () => (await requests(port, 4)).every((b) => b === "web-2"));
    delete process.env.VIGIE_HAPROXY_BIND;
  });

  test.run();
}

for (const kind of STORE_KINDS) if (tools && storeAvailable(kind)) defineSuite(kind);
