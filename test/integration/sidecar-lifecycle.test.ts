// The sidecar over time, against a real etcd and the embedded store: a changed config file is applied and an invalid one ignored; a store
// unreachable at start-up is reported by status() and the files appear once it answers; exec mode supervises the
// application, signals it on change and returns its exit code on stop.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pino from "pino";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { configSchema } from "../../src/config/schema.js";
import { type Sidecar, startSidecar } from "../../src/sidecar/sidecar.js";
import {
  createHarness,
  type Harness,
  STORE_KINDS,
  type StoreKind,
  settle,
  sharedStore,
  storeAvailable,
} from "../fixtures/sidecar/harness.js";
import { CuttableProxy } from "../fixtures/sidecar/proxy.js";
import { waitFor } from "../helpers/ports.js";
import { requireTools } from "../helpers/require-tool.js";
import { SIGNAL_APP } from "../unit/reload/app.js";

const tools = requireTools("sidecar lifecycle", "etcd");

interface LogLine {
  msg: string;
  [field: string]: unknown;
}

function defineSuite(kind: StoreKind): void {
  const test = suite(`sidecar lifecycle (${kind})`);
  let h: Harness;
  const store = sharedStore(test, kind, tools !== undefined);

  test.before.each(async () => {
    if (tools) h = await createHarness(kind, store());
  });
  test.after.each(async () => {
    if (tools) await h.cleanup();
  });

  function t(name: string, body: () => Promise<void>) {
    test(name, async () => {
      if (tools) await body();
    });
  }

  /** Starts the sidecar like h.start, with a logger whose JSON lines the test can read. */
  async function startLogged(raw: unknown, configFile: string): Promise<{ sidecar: Sidecar; logs: LogLine[] }> {
    const logs: LogLine[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => logs.push(JSON.parse(line) as LogLine) });
    h.sidecar = await startSidecar({
      config: configSchema.parse(raw),
      configFile,
      baseDir: h.dir,
      endpoints: [h.endpoint],
      logger,
      metrics: h.metrics,
      forwardSignals: false,
    });
    return { sidecar: h.sidecar, logs };
  }

  t("a changed config is applied; an invalid one is ignored and the running config stays", async () => {
    await writeFile(join(h.dir, "a.hbs"), 'a={{key "/cfg/a"}}\n');
    await writeFile(join(h.dir, "b.hbs"), 'b={{keyOrDefault "/cfg/b" "none"}}\n');
    await h.client.put("/cfg/a", "1");
    const configFile = join(h.dir, "vigie.yaml");
    const first = { templates: [{ source: "a.hbs", destination: "a.out" }] };
    // JSON is YAML: the same text feeds the file watcher and this test.
    await writeFile(configFile, JSON.stringify(first));
    const { sidecar, logs } = await startLogged(first, configFile);
    await h.waitForFile(join(h.dir, "a.out"), (text) => text === "a=1\n");

    // Invalid (an unknown key) and different from the running config (a second template): applying it by mistake
    // would render b.out.
    await writeFile(
      configFile,
      "templates:\n  - source: a.hbs\n    destination: a.out\n  - source: b.hbs\n    destination: b.out\n    colour: blue\n",
    );
    const rejected = await waitFor("the invalid config to be reported", async () =>
      logs.find((line) => line.msg === "config changed but is invalid; keeping the running config"),
    );
    assert.match(String(rejected.error), "colour");
    await h.client.put("/cfg/a", "2");
    await h.waitForFile(join(h.dir, "a.out"), (text) => text === "a=2\n");
    await settle(300);
    assert.not.ok(await readFile(join(h.dir, "b.out"), "utf8").catch(() => undefined), "b.out was never rendered");
    assert.equal(
      sidecar.status().templates.map((tpl) => tpl.name),
      ["a.hbs"],
    );

    const second = {
      templates: [
        { source: "a.hbs", destination: "a.out" },
        { source: "b.hbs", destination: "b.out" },
      ],
    };
    await writeFile(configFile, JSON.stringify(second));
    await h.waitForFile(join(h.dir, "b.out"), (text) => text === "b=none\n");
    await h.client.put("/cfg/b", "set");
    await h.waitForFile(join(h.dir, "b.out"), (text) => text === "b=set\n");
  });

  t("a config change outside templates: is named in a warning (restart to apply); templates: still apply", async () => {
    await writeFile(join(h.dir, "a.hbs"), 'a={{key "/warn/a"}}\n');
    await writeFile(join(h.dir, "b.hbs"), "b\n");
    await h.client.put("/warn/a", "1");
    const configFile = join(h.dir, "vigie.yaml");
    const first = { templates: [{ source: "a.hbs", destination: "a.out" }] };
    await writeFile(configFile, JSON.stringify(first));
    const { logs } = await startLogged(first, configFile);
    await h.waitForFile(join(h.dir, "a.out"), (text) => text === "a=1\n");
    const startOnly = (line: LogLine) => line.msg.startsWith("config fields that apply only at start changed");
    assert.equal(logs.filter(startOnly), [], "no warning at start");

    const templates = [...first.templates, { source: "b.hbs", destination: "b.out" }];
    await writeFile(configFile, JSON.stringify({ templates, log_level: "debug", voters: 5 }));
    await h.waitForFile(join(h.dir, "b.out"), (text) => text === "b\n");
    const warning = await waitFor("the warning", async () => logs.find(startOnly));
    assert.equal(warning.fields, ["log_level", "voters"]);
    assert.is(warning.level, 40);

    // Only templates: change now: no new warning (the same start-only values as the file before).
    await writeFile(configFile, JSON.stringify({ templates: first.templates, log_level: "debug", voters: 5 }));
    await waitFor("b.hbs to be dropped", async () => h.sidecar?.status().templates.length === 1);
    await settle(200);
    assert.is(logs.filter(startOnly).length, 1);
  });

  t("a change re-renders only the templates that read it; a burst under wait renders once", async () => {
    for (const name of ["a", "b", "c"]) {
      await writeFile(join(h.dir, `${name}.hbs`), `{{#each (ls "/only/${name}/")}}{{name}}={{value}};{{/each}}\n`);
      await h.client.put(`/only/${name}/k`, "0");
    }
    const sidecar = await h.start({
      templates: [
        { source: "a.hbs", destination: "a.out" },
        // The 10 puts below, one after the other, must all land within one quiet period, even on a loaded machine.
        { source: "b.hbs", destination: "b.out", wait: { min: "3s", max: "30s" } },
        { source: "c.hbs", destination: "c.out" },
      ],
    });
    await sidecar.firstRender;
    const renders = () => Object.fromEntries(sidecar.status().templates.map((tpl) => [tpl.name, tpl.renders]));
    assert.equal(renders(), { "a.hbs": 1, "b.hbs": 1, "c.hbs": 1 });
    await h.client.put("/only/a/k", "1");
    await h.waitForFile(join(h.dir, "a.out"), (text) => text === "k=1;\n");
    await settle(200);
    assert.equal(renders(), { "a.hbs": 2, "b.hbs": 1, "c.hbs": 1 });
    for (let i = 1; i <= 10; i++) await h.client.put("/only/b/k", String(i));
    await h.waitForFile(join(h.dir, "b.out"), (text) => text === "k=10;\n", 40_000);
    await settle(300);
    assert.equal(renders(), { "a.hbs": 2, "b.hbs": 2, "c.hbs": 1 });
  });

  t("a store unreachable at start-up is reported; files appear once it answers", async () => {
    await writeFile(join(h.dir, "t.hbs"), 'v={{key "/up/v"}}\n');
    await h.client.put("/up/v", "ok");
    const proxy = new CuttableProxy(new URL(h.endpoint));
    await proxy.open();
    await proxy.cut();
    try {
      const sidecar = await h.start({ templates: [{ source: "t.hbs", destination: "t.out" }] }, undefined, [
        `http://127.0.0.1:${proxy.port}`,
      ]);
      await waitFor("unhealthy status", async () => !sidecar.status().healthy);
      assert.match(sidecar.status().reason ?? "", "store unreachable");
      assert.not.ok(await readFile(join(h.dir, "t.out")).catch(() => undefined));
      await proxy.open();
      await h.waitForFile(join(h.dir, "t.out"), (text) => text === "v=ok\n", 10_000);
      await waitFor("healthy status", async () => sidecar.status().healthy);
    } finally {
      await h.sidecar?.stop();
      h.sidecar = undefined;
      await proxy.cut();
    }
  });

  t("stop() waits for the batch in flight: the reload of a file already written completes first", async () => {
    await writeFile(join(h.dir, "t.hbs"), 'v={{key "/stop/v"}}\n');
    await h.client.put("/stop/v", "1");
    const marker = join(h.dir, "reloaded");
    const sidecar = await h.start({
      templates: [
        {
          source: "t.hbs",
          destination: "t.out",
          reload: { command: ["sh", "-c", 'sleep 1 && echo done > "$0"', marker], timeout: "5s" },
        },
      ],
    });
    // firstRender resolves once the file is written, before its reload (which takes a second) is done.
    await sidecar.firstRender;
    assert.is(await readFile(join(h.dir, "t.out"), "utf8"), "v=1\n");
    await sidecar.stop();
    h.sidecar = undefined;
    assert.is(await readFile(marker, "utf8").catch(() => "not reloaded when stop() returned"), "done\n");
  });

  t("exec mode: the supervised app is signalled on change and its exit code returned on stop", async () => {
    const log = join(h.dir, "app.log");
    process.env.SIGNAL_APP_LOG = log;
    try {
      await writeFile(join(h.dir, "t.hbs"), 'v={{key "/exec/v"}}\n');
      await h.client.put("/exec/v", "1");
      const sidecar = await h.start({
        exec: { command: [process.execPath, SIGNAL_APP, "-", "5"], reload_signal: "SIGUSR2" },
        templates: [{ source: "t.hbs", destination: "t.out", reload: { exec: true } }],
      });
      await waitFor("the app to start", async () => (await readFile(log, "utf8").catch(() => "")).includes("ready"));
      await h.client.put("/exec/v", "2");
      await h.waitForFile(join(h.dir, "t.out"), (text) => text === "v=2\n");
      await waitFor("SIGUSR2", async () => (await readFile(log, "utf8")).includes("SIGUSR2"));
      const code = await sidecar.stop();
      h.sidecar = undefined;
      assert.is(code, 5);
      assert.match(await readFile(log, "utf8"), "SIGTERM");
    } finally {
      delete process.env.SIGNAL_APP_LOG;
    }
  });

  test.run();
}

for (const kind of STORE_KINDS) if (tools && storeAvailable(kind)) defineSuite(kind);
