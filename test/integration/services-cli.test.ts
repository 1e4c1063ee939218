// `vigie services` (the built CLI) against a real etcd, listing instances registered by startServices.
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { serviceSchema } from "../../src/config/schema.js";
import { silentLogger } from "../../src/log.js";
import { type RunningServices, startServices } from "../../src/services/index.js";
import { StoreClient } from "../../src/store/client.js";
import { type EtcdProcess, startEtcd } from "../helpers/etcd.js";
import { waitFor } from "../helpers/ports.js";
import { requireTools } from "../helpers/require-tool.js";

const run = promisify(execFile);
const CLI = resolve("dist/cli.js");

interface Context {
  etcd: EtcdProcess | undefined;
  client: StoreClient | undefined;
  services: RunningServices | undefined;
}
const cli = suite<Context>("vigie services", { etcd: undefined, client: undefined, services: undefined });
const tools = requireTools("vigie services", "etcd");

async function vigie(context: Context, ...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return await run(process.execPath, [CLI, ...args, "--endpoints", context.etcd!.clientUrl], { timeout: 20_000 });
}

cli.before(async (context) => {
  if (!tools) return;
  context.etcd = await startEtcd();
  context.client = new StoreClient({ endpoints: [context.etcd.clientUrl] });
  context.services = startServices({
    services: [
      serviceSchema.parse({ name: "web", id: "web-2", address: "127.0.0.1:8082", tags: ["blue", "v2"] }),
      serviceSchema.parse({ name: "web", id: "web-1", address: "127.0.0.1:8081", tags: ["blue"] }),
      serviceSchema.parse({
        name: "web",
        id: "web-3",
        address: "127.0.0.1:8083",
        check: { exec: ["false"], interval: "100ms", timeout: "1s" },
      }),
      serviceSchema.parse({ name: "db", address: "127.0.0.1:5432", meta: { role: "primary" } }),
    ],
    client: context.client,
    logger: silentLogger(),
  });
  await waitFor("four instances", async () => {
    const { kvs } = await context.client!.range("/services/", { prefix: true });
    return kvs.length === 4;
  });
  // Someone else's junk under /services/ must not break the listing.
  await context.client.put("/services/web/garbage", "not json");
});

cli.after(async (context) => {
  await context.services?.stop();
  await context.client?.close();
  await context.etcd?.stop();
});

cli("the table lists healthy instances sorted by name and id, and warns about malformed entries", async (context) => {
  if (!tools) return;
  const { stdout, stderr } = await vigie(context, "services");
  assert.is(
    stdout,
    [
      "NAME  ID                 ADDRESS         HEALTH   TAGS",
      "db    db-127.0.0.1-5432  127.0.0.1:5432  passing",
      "web   web-1              127.0.0.1:8081  passing  blue",
      "web   web-2              127.0.0.1:8082  passing  blue,v2",
      "",
    ].join("\n"),
  );
  assert.match(stderr, /skipping \/services\/web\/garbage: not a service instance \(value is not JSON\)/);
});

cli("NAME filters, --all adds critical instances, -w json is machine-readable", async (context) => {
  if (!tools) return;
  const { stdout } = await vigie(context, "services", "web", "--all", "-w", "json");
  const listed = JSON.parse(stdout) as Array<{ id: string; health: string; port: number; tags: string[] }>;
  assert.equal(
    listed.map((instance) => [instance.id, instance.health, instance.port]),
    [
      ["web-1", "passing", 8081],
      ["web-2", "passing", 8082],
      ["web-3", "critical", 8083],
    ],
  );
  const none = await vigie(context, "services", "nothing-here", "-w", "json");
  assert.equal(JSON.parse(none.stdout), []);
});

cli("a bad service name is a usage error", async (context) => {
  if (!tools) return;
  try {
    await vigie(context, "services", "../etc");
    assert.unreachable("should have failed");
  } catch (error) {
    const failure = error as { code?: number; stderr?: string };
    assert.is(failure.code, 2);
    assert.match(failure.stderr ?? "", /service name "..\/etc"/);
  }
});

cli.run();
