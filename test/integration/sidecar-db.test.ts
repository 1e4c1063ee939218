// DB failover against a real etcd and against the embedded store (a real `vigie agent`): a put of /db/sql_master
// rewrites db.php (checked by `php -l`, read by a PHP script) and the application, a real process found through its
// pidfile, receives SIGHUP. A bad template, a missing key, a failing check and a failing reload command each leave the
// previous file and the application untouched.
import { execFile } from "node:child_process";
import { copyFile, open, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  createHarness,
  FIXTURES,
  type Harness,
  REPO_TEMPLATES,
  STORE_KINDS,
  type StoreKind,
  settle,
  sharedStore,
  storeAvailable,
} from "../fixtures/sidecar/harness.js";
import { waitFor } from "../helpers/ports.js";
import { requireTools } from "../helpers/require-tool.js";
import { type SignalApp, startSignalApp } from "../unit/reload/app.js";

const run = promisify(execFile);
const tools = requireTools("sidecar db.php", "etcd", "php");

function defineSuite(kind: StoreKind): void {
  const test = suite(`sidecar db.php (${kind})`);
  let h: Harness;
  const store = sharedStore(test, kind, tools !== undefined);
  let app: SignalApp;

  test.before.each(async () => {
    if (!tools) return;
    h = await createHarness(kind, store());
    app = await startSignalApp([join(h.dir, "app.pid")]);
    await h.client.put("/db/sql_master", "10.0.0.1");
    await h.client.put("/db/user", "app");
    await h.client.put("/db/password", "p'a$s\\word");
  });

  test.after.each(async () => {
    if (!tools) return;
    await app.stop();
    await h.cleanup();
  });

  function t(name: string, body: () => Promise<void>) {
    test(name, async () => {
      if (tools) await body();
    });
  }

  async function readWithPhp(path: string): Promise<{ dsn: string; user: string; password: string }> {
    const { stdout } = await run(tools!.php!, [join(FIXTURES, "read-db.php"), path]);
    return JSON.parse(stdout) as { dsn: string; user: string; password: string };
  }

  function dbConfig(extra: Record<string, unknown> = {}) {
    return {
      templates: [
        {
          source: "db.php.hbs",
          destination: "db.php",
          mode: "0640",
          check: [tools!.php!, "-l", "{{src}}"],
          reload: { signal: "SIGHUP", pidfile: join(h.dir, "app.pid"), process: "signal-app.mjs" },
          ...extra,
        },
      ],
    };
  }

  t("a put of /db/sql_master rewrites db.php and the app gets SIGHUP", async () => {
    await copyFile(join(REPO_TEMPLATES, "db.php.hbs"), join(h.dir, "db.php.hbs"));
    const sidecar = await h.start(dbConfig());
    await sidecar.firstRender;
    const path = join(h.dir, "db.php");
    await h.waitForFile(path, (text) => text.includes("10.0.0.1"));
    await app.waitForLine("SIGHUP 1");
    const first = await readWithPhp(path);
    assert.equal(first, { dsn: "mysql:host=10.0.0.1;port=3306;dbname=app", user: "app", password: "p'a$s\\word" });

    await h.client.put("/db/sql_master", "10.0.0.2");
    await h.waitForFile(path, (text) => text.includes("10.0.0.2"));
    await app.waitForLine("SIGHUP 2");
    assert.is((await readWithPhp(path)).dsn, "mysql:host=10.0.0.2;port=3306;dbname=app");
    assert.ok(sidecar.status().healthy);

    // A put that does not change the value does not rewrite the file nor signal the app.
    await h.client.put("/db/sql_master", "10.0.0.2");
    await settle();
    assert.not.ok(app.lines.includes("SIGHUP 3"));
  });

  t("a bad template and a missing key keep the previous file and the app untouched", async () => {
    const source = join(h.dir, "db.php.hbs");
    await copyFile(join(REPO_TEMPLATES, "db.php.hbs"), source);
    const sidecar = await h.start(dbConfig());
    const path = join(h.dir, "db.php");
    await h.waitForFile(path, (text) => text.includes("10.0.0.1"));
    await app.waitForLine("SIGHUP 1");
    const good = await readFile(path, "utf8");

    // Saved the way `>` in a shell or many editors save: truncated, then written. The empty moment between the two
    // must not render an empty db.php (`php -l` accepts one); held here well past the file watch's settle time.
    const saving = await open(source, "w");
    await waitFor("the empty template to be refused", async () =>
      sidecar.status().templates[0]?.error?.includes("the template is empty"),
    );
    await settle();
    assert.is(await readFile(path, "utf8"), good);
    assert.not.ok(app.lines.includes("SIGHUP 2"));
    await saving.writeFile("<?php return {{#if x}} unclosed;\n");
    await saving.close();
    await waitFor("the template error to be reported", async () =>
      sidecar.status().templates[0]?.error?.includes("template syntax error"),
    );
    assert.match(sidecar.status().templates[0]?.error ?? "", `${source}:`);
    await settle();
    assert.is(await readFile(path, "utf8"), good);
    assert.not.ok(app.lines.includes("SIGHUP 2"));

    // Fix the template, then delete a key `key` needs: the render fails naming the key.
    await copyFile(join(REPO_TEMPLATES, "db.php.hbs"), source);
    await waitFor("the fixed template to render", async () => sidecar.status().templates[0]?.error === undefined);
    await h.client.deleteRange("/db/user");
    await waitFor("the missing key to be reported", async () =>
      sidecar.status().templates[0]?.error?.includes('key "/db/user" does not exist'),
    );
    await settle();
    assert.is(await readFile(path, "utf8"), good);
    assert.not.ok(app.lines.includes("SIGHUP 2"));
    assert.match(h.metrics.render(), /vigie_render_failures_total\{template="db.php.hbs",stage="render"\} 1/);

    // Putting it back renders again (the failed render still watched the key).
    await h.client.put("/db/user", "app2");
    await h.waitForFile(path, (text) => text.includes("'app2'"));
    await app.waitForLine("SIGHUP 2");
  });

  t("a failing check keeps the previous file and does not signal", async () => {
    await writeFile(join(h.dir, "raw.php.hbs"), '<?php return {{key "/raw/expr"}};\n');
    await h.client.put("/raw/expr", "1 + 2");
    const sidecar = await h.start({
      templates: [
        {
          source: "raw.php.hbs",
          destination: "raw.php",
          check: [tools!.php!, "-l", "{{src}}"],
          reload: { signal: "SIGHUP", pidfile: join(h.dir, "app.pid") },
        },
      ],
    });
    const path = join(h.dir, "raw.php");
    await h.waitForFile(path, (text) => text.includes("1 + 2"));
    await app.waitForLine("SIGHUP 1");
    await h.client.put("/raw/expr", "1 +");
    await waitFor("the check failure", async () => sidecar.status().templates[0]?.error?.includes("check failed"));
    assert.is(await readFile(path, "utf8"), "<?php return 1 + 2;\n");
    await settle();
    assert.not.ok(app.lines.includes("SIGHUP 2"));
    const staged = (await run("ls", ["-A", h.dir])).stdout;
    assert.not.match(staged, ".tmp");
  });

  t("a failing reload command restores the previous file and leaves the app alone", async () => {
    await copyFile(join(REPO_TEMPLATES, "db.php.hbs"), join(h.dir, "db.php.hbs"));
    const marker = join(h.dir, "reloaded");
    const gate = join(h.dir, "reload-fails");
    // The reload command succeeds (touching a marker) until the gate file exists. No value from the store is in it.
    const script = join(h.dir, "reload.sh");
    await writeFile(
      script,
      `#!/bin/sh\n[ -e "${gate}" ] && { echo "app refused the config" >&2; exit 1; }\ntouch "${marker}"\n`,
      {
        mode: 0o755,
      },
    );
    const sidecar = await h.start({
      templates: [{ source: "db.php.hbs", destination: "db.php", reload: { command: [script], timeout: "5s" } }],
    });
    const path = join(h.dir, "db.php");
    await h.waitForFile(path, (text) => text.includes("10.0.0.1"));
    await waitFor("the first reload", async () => (await readFile(marker).catch(() => undefined)) !== undefined);
    const good = await readFile(path, "utf8");
    await writeFile(gate, "");
    await h.client.put("/db/sql_master", "10.0.0.9");
    await waitFor("the reload failure to be counted", async () =>
      /vigie_reload_failures_total 1/.test(h.metrics.render()),
    );
    assert.is(await readFile(path, "utf8"), good);
    assert.ok(sidecar.status().healthy);
    // Once the application accepts configs again, the next change is written and reloaded normally.
    await rm(gate);
    await rm(marker);
    await h.client.put("/db/sql_master", "10.0.0.7");
    await h.waitForFile(path, (text) => text.includes("10.0.0.7"));
    await waitFor(
      "the reload after recovery",
      async () => (await readFile(marker).catch(() => undefined)) !== undefined,
    );
  });

  test.run();
}

for (const kind of STORE_KINDS) if (tools && storeAvailable(kind)) defineSuite(kind);
