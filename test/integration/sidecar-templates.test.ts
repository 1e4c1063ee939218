// The shipped templates rendered by `vigie render --once` from a real etcd, then judged by the real programs:
// `nginx -t`, `haproxy -c -f`, `php -l` and a PHP script that reads the config. Also the exit codes of runRender.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { runRender } from "../../src/commands/render.js";
import { configSchema } from "../../src/config/schema.js";
import { silentLogger } from "../../src/log.js";
import { StoreClient } from "../../src/store/client.js";
import { FIXTURES, REPO_TEMPLATES } from "../fixtures/sidecar/harness.js";
import { type EtcdProcess, startEtcd } from "../helpers/etcd.js";
import { requireTools } from "../helpers/require-tool.js";

const run = promisify(execFile);
const tools = requireTools("shipped templates", "etcd", "nginx", "haproxy", "php");
let etcd: EtcdProcess;
let client: StoreClient;
let dir: string;

test.before(async () => {
  if (!tools) return;
  etcd = await startEtcd();
  client = new StoreClient({ endpoints: [etcd.clientUrl] });
});
test.after(async () => {
  await client?.close();
  await etcd?.stop();
});
test.before.each(async () => {
  dir = await mkdtemp(join(tmpdir(), "vigie-templates-"));
});
test.after.each(async () => {
  await rm(dir, { recursive: true, force: true });
});

function t(name: string, body: () => Promise<void>) {
  test(name, async () => {
    if (tools) await body();
  });
}

async function render(templates: Array<{ source: string; destination: string }>, dry = false): Promise<number> {
  return await runRender({
    config: configSchema.parse({ templates }),
    baseDir: dir,
    endpoints: [etcd.clientUrl],
    once: true,
    dry,
    logger: silentLogger(),
  });
}

async function registerWeb(count: number, prefix = "/services/web/"): Promise<void> {
  await client.deleteRange(prefix, { prefix: true });
  for (let i = 1; i <= count; i++) {
    const port = 9000 + i;
    const value = { address: `127.0.0.1:${port}`, host: "127.0.0.1", port, tags: ["v1"], meta: {}, health: "passing" };
    await client.put(`${prefix}web-${String(i).padStart(2, "0")}`, JSON.stringify(value));
  }
  await client.put(`${prefix}sick`, JSON.stringify({ address: "127.0.0.1:1", health: "critical" }));
}

async function nginxTest(upstream: string): Promise<void> {
  const prefix = join(dir, "nginx");
  await mkdir(join(prefix, "logs"), { recursive: true });
  const conf = join(prefix, "nginx.conf");
  await writeFile(
    conf,
    `pid ${join(prefix, "nginx.pid")};\nerror_log ${join(prefix, "error.log")};\nevents {}\n` +
      `http {\n  access_log off;\n  include ${upstream};\n  server { listen 127.0.0.1:1; location / { proxy_pass http://backend; } }\n}\n`,
  );
  await run(tools!.nginx!, ["-t", "-q", "-p", prefix, "-c", conf, "-e", join(prefix, "error.log")]);
}

/**
 * A write under /services/web/ that lists no new server (an instance turning critical, then its entry expiring)
 * moves the store revision; the service templates must render the same bytes, or the sidecar would rewrite the
 * file, run its check and reload the proxy for nothing.
 */
async function assertSameAfterUnlistedChange(source: string, destination: string, before: string): Promise<void> {
  const value = { address: "127.0.0.1:9999", host: "127.0.0.1", port: 9999, tags: [], meta: {}, health: "critical" };
  await client.put("/services/web/web-99", JSON.stringify(value));
  assert.is(await render([{ source, destination }]), 0);
  assert.is(await readFile(destination, "utf8"), before, "a critical instance changes nothing");
  await client.deleteRange("/services/web/web-99");
  assert.is(await render([{ source, destination }]), 0);
  assert.is(await readFile(destination, "utf8"), before, "its entry expiring changes nothing");
}

t("nginx-upstream.conf.hbs passes nginx -t with instances and with none", async () => {
  const destination = join(dir, "upstream.conf");
  await registerWeb(3);
  assert.is(await render([{ source: join(REPO_TEMPLATES, "nginx-upstream.conf.hbs"), destination }]), 0);
  const text = await readFile(destination, "utf8");
  assert.match(text, /server 127\.0\.0\.1:9001; # web-01\n {4}server 127\.0\.0\.1:9002; # web-02\n/);
  assert.not.match(text, "127.0.0.1:1;");
  await nginxTest(destination);
  await assertSameAfterUnlistedChange(join(REPO_TEMPLATES, "nginx-upstream.conf.hbs"), destination, text);
  await registerWeb(0);
  assert.is(await render([{ source: join(REPO_TEMPLATES, "nginx-upstream.conf.hbs"), destination }]), 0);
  assert.match(await readFile(destination, "utf8"), "server 127.0.0.1:1 down;");
  await nginxTest(destination);
});

t("haproxy.cfg.hbs passes haproxy -c with instances and with none", async () => {
  const destination = join(dir, "haproxy.cfg");
  await registerWeb(5);
  assert.is(await render([{ source: join(REPO_TEMPLATES, "haproxy.cfg.hbs"), destination }]), 0);
  const text = await readFile(destination, "utf8");
  assert.is(text.match(/^ {4}server web-\d\d 127\.0\.0\.1:90\d\d$/gm)?.length, 5);
  // haproxy >= 2.6 must not load the system CA store at each check and reload (~40 ms on the scale-out path); the
  // guard keeps the file valid for older versions, which do not know the keyword.
  assert.match(text, /^global\n(?: .*\n)*\.if version_atleast\(2\.6\)\n {4}httpclient\.ssl\.verify none\n\.endif\n/m);
  await run(tools!.haproxy!, ["-c", "-q", "-f", destination]);
  await assertSameAfterUnlistedChange(join(REPO_TEMPLATES, "haproxy.cfg.hbs"), destination, text);
  await registerWeb(0);
  assert.is(await render([{ source: join(REPO_TEMPLATES, "haproxy.cfg.hbs"), destination }]), 0);
  await run(tools!.haproxy!, ["-c", "-q", "-f", destination]);
});

t("db.php.hbs passes php -l and a PHP script reads it, quotes included", async () => {
  const destination = join(dir, "db.php");
  await client.put("/db/sql_master", "db-2.internal");
  await client.put("/db/port", "3307");
  await client.put("/db/user", "o'brien");
  await client.put("/db/password", "$ecret\\'; system('x'); //");
  assert.is(await render([{ source: join(REPO_TEMPLATES, "db.php.hbs"), destination }]), 0);
  await run(tools!.php!, ["-l", destination]);
  const { stdout } = await run(tools!.php!, [join(FIXTURES, "read-db.php"), destination]);
  assert.equal(JSON.parse(stdout), {
    dsn: "mysql:host=db-2.internal;port=3307;dbname=app",
    user: "o'brien",
    password: "$ecret\\'; system('x'); //",
  });
});

t("render --once fails (exit 1) on a missing key and leaves no file; --dry prints without writing", async () => {
  await client.deleteRange("/db/", { prefix: true });
  await client.put("/db/sql_master", "m");
  const destination = join(dir, "db.php");
  assert.is(await render([{ source: join(REPO_TEMPLATES, "db.php.hbs"), destination }]), 1);
  assert.not.ok(await readFile(destination).catch(() => undefined));
  await client.put("/db/user", "u");
  await client.put("/db/password", "p");
  const written: string[] = [];
  const original = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  let code: number;
  try {
    code = await render([{ source: join(REPO_TEMPLATES, "db.php.hbs"), destination }], true);
  } finally {
    process.stdout.write = original;
  }
  assert.is(code, 0);
  assert.match(written.join(""), "'host' => 'm',");
  assert.not.ok(await readFile(destination).catch(() => undefined));
});

test.run();
