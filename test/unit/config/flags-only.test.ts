// The zod-free check of a flags-only config (src/config/flags-only.ts) must never accept what the zod schema
// rejects, nor return anything else than the schema would: it is held to configSchema's own answers here, on the
// values the command line gives and on many it never gives. A real agent started from flags alone must not load
// zod at all (the point of the fast path), and bad flags keep the schema's exact messages.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { configFromFlagsOnly } from "../../../src/config/flags-only.js";
import { loadConfig } from "../../../src/config/load.js";
import { configSchema } from "../../../src/config/schema.js";
import { ConfigError } from "../../../src/errors.js";
import { LOG_LEVELS } from "../../../src/log.js";
import { spawnAgent } from "../../helpers/agent-process.js";
import { freePort, waitFor } from "../../helpers/ports.js";

/** What the schema says about `flags`: its output, or undefined when it rejects them. */
function schemaOutput(flags: Record<string, unknown>): unknown {
  const result = configSchema.safeParse(flags);
  return result.success ? result.data : undefined;
}

async function loadError(overrides: Record<string, unknown>): Promise<string> {
  try {
    await loadConfig(undefined, overrides);
  } catch (error) {
    assert.instance(error, ConfigError);
    return (error as Error).message;
  }
  throw new Error(`${JSON.stringify(overrides)} loaded without error`);
}

const urlText = fc.oneof(
  fc.constantFrom(
    "http://127.0.0.1:2379",
    "https://[::1]:2380/",
    " http://a:1 ",
    "http://a\t:1",
    "HTTP://A:1",
    "http:a",
    "https:/a",
    "ftp://a:1",
    "localhost:2379",
    "http://",
    "http://a b",
    "http://a:99999",
    "",
    " ",
    "http://a:1,http://b:2",
    " http://a:1 , ,https://b ",
    "http://a:1,ftp://b",
    ",",
  ),
  fc.webUrl(),
  fc.string(),
);
const anyValue = fc.oneof(
  urlText,
  fc.integer({ min: -3, max: 10 }),
  fc.constantFrom(2.5, Number.NaN, Number.POSITIVE_INFINITY, 1e21, -0, null, true, false, [], {}),
  fc.array(fc.constantFrom("http://a:1", "ftp://b")),
  fc.dictionary(fc.string(), fc.constantFrom("http://a:1", "x")),
  fc.constantFrom(...LOG_LEVELS, "verbose"),
);
const FIELDS = [
  "name",
  "data_dir",
  "listen_client",
  "listen_peer",
  "advertise_client",
  "advertise_peer",
  "initial_cluster",
  "join",
  "voters",
  "store_endpoints",
  "dev",
  "log_level",
];
const flagsArbitrary = fc.dictionary(
  fc.oneof(fc.constantFrom(...FIELDS), fc.constantFrom("templates", "bogus")),
  anyValue,
  {
    maxKeys: 6,
  },
);

test("whatever it accepts, the schema accepts with the same result (property)", () => {
  let accepted = 0;
  fc.assert(
    fc.property(flagsArbitrary, (flags) => {
      const fast = configFromFlagsOnly(flags);
      if (fast === undefined) return;
      accepted++;
      assert.equal(fast, schemaOutput(flags), JSON.stringify(flags));
    }),
    { numRuns: 3000 },
  );
  assert.ok(accepted > 100, `the property saw only ${accepted} accepted configs`);
});

test("the flags a cluster member is started with take the fast path, with the schema's result", () => {
  const cases: Record<string, unknown>[] = [
    {},
    { dev: true, log_level: "warn" },
    {
      name: "a1",
      data_dir: "/var/lib/vigie",
      listen_client: "http://127.0.0.1:2379",
      listen_peer: "http://127.0.0.1:2380",
      initial_cluster: "a1=http://127.0.0.1:2380,a2=http://127.0.0.1:2382",
      voters: 3,
      log_level: "info",
    },
    { name: "a4", join: " http://127.0.0.1:2379 ", voters: 5 },
    {
      name: "a5",
      listen_client: "http://0.0.0.0:2379",
      listen_peer: "http://0.0.0.0:2380",
      advertise_client: "http://10.0.0.5:2379",
      advertise_peer: "http://10.0.0.5:2380",
      join: "http://10.0.0.1:2379",
    },
    // WHATWG URL ignores tabs and newlines inside a URL; the schema returns the URL without them.
    { listen_peer: "http://127.0.0.1\t:2380", store_endpoints: "http://a\n:1" },
    { store_endpoints: "http://10.0.0.1:2379, https://10.0.0.2:2379,", listen_client: "http://[::1]:9000" },
  ];
  for (const flags of cases) {
    const fast = configFromFlagsOnly(flags);
    assert.ok(fast !== undefined, `fast path refused ${JSON.stringify(flags)}`);
    assert.equal(fast, schemaOutput(flags));
  }
});

test("anything the schema would reject is left to the schema", () => {
  const rejected: Record<string, unknown>[] = [
    { voters: 0 },
    { voters: 8 },
    { voters: 2.5 },
    { name: "" },
    { listen_client: "localhost:2379" },
    { listen_peer: "ftp://a:1" },
    { join: "http:a" },
    { store_endpoints: " , " },
    { store_endpoints: "http://a:1,b:2" },
    { log_level: "verbose" },
    { templates: [] },
    { dev: undefined },
  ];
  for (const flags of rejected) assert.is(configFromFlagsOnly(flags), undefined, JSON.stringify(flags));
});

test("bad flags without a file keep the schema's messages, naming the flag", async () => {
  assert.is(await loadError({ voters: 0 }), "flag --voters: must be at least 1");
  assert.is(await loadError({ voters: 9 }), "flag --voters: must be at most 7");
  assert.is(
    await loadError({ listen_client: "localhost:2379" }),
    "flag --listen-client: must be an http:// or https:// URL",
  );
  assert.is(
    await loadError({ store_endpoints: "http://a:1,ftp://b", name: "" }),
    "flag --name: must not be empty\nflag --store-endpoints: must be an http:// or https:// URL",
  );
  assert.is(await loadError({ store_endpoints: " , " }), "flag --store-endpoints: needs at least one entry");
});

/** Runs `vigie agent --dev [args]` until it serves; returns the ES module URLs it resolved. */
async function agentModules(dir: string, args: string[]): Promise<string[]> {
  const listFile = join(dir, `modules-${Math.random().toString(36).slice(2)}.txt`);
  const hooks = join(dir, "hooks.mjs");
  await writeFile(
    hooks,
    "import { appendFileSync } from 'node:fs';\n" +
      "export async function resolve(specifier, context, next) {\n" +
      "  const resolved = await next(specifier, context);\n" +
      `  appendFileSync(${JSON.stringify(listFile)}, resolved.url + "\\n");\n` +
      "  return resolved;\n}\n",
  );
  const register = join(dir, "register.mjs");
  await writeFile(
    register,
    `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
  );
  const clientUrl = `http://127.0.0.1:${await freePort()}`;
  const peerUrl = `http://127.0.0.1:${await freePort()}`;
  const agent = spawnAgent(
    ["--dev", "--listen-client", clientUrl, "--listen-peer", peerUrl, "--log-level", "info", ...args],
    {
      ...process.env,
      NODE_OPTIONS: `--import ${register}`,
    },
  );
  try {
    await waitFor(
      "the agent's start-up",
      async () => {
        if (agent.child.exitCode !== null)
          throw new Error(`agent exited with ${agent.child.exitCode}: ${agent.output()}`);
        return agent.output().includes('"msg":"agent running"');
      },
      15_000,
    );
    return (await readFile(listFile, "utf8")).split("\n");
  } finally {
    // Stopped, not killed: a dev agent removes its data dir as it stops (SIGKILL left one in /tmp per run).
    await agent.stop();
  }
}

test("an agent started from flags alone does not load zod; with a config file it does", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-flags-only-"));
  try {
    const flagsOnly = await agentModules(dir, ["--name", "solo", "--voters", "1"]);
    assert.ok(
      flagsOnly.some((url) => url.endsWith("/config/flags-only.js")),
      "the hook saw the agent's own modules",
    );
    assert.not.ok(
      flagsOnly.some((url) => url.includes("/node_modules/zod/")),
      "a flags-only agent loaded zod",
    );
    const configFile = join(dir, "vigie.yaml");
    await writeFile(configFile, "log_level: warn\n");
    const withFile = await agentModules(dir, ["--config", configFile]);
    assert.ok(
      withFile.some((url) => url.includes("/node_modules/zod/")),
      "a config file is validated with the zod schema",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
