// Telling the application, against a real etcd. A reload command that fails: the file it was meant to load is put
// back, and the render is retried with backoff until the command works again, without waiting for another change in
// the store; a file that did not exist before is kept (deleting a config file cannot help an application that
// refused a reload). Exec mode: the application starts only once every template's file is in place.
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { type Harness, harnessSuite } from "../fixtures/sidecar/harness.js";
import { waitFor } from "../helpers/ports.js";
import { requireTools } from "../helpers/require-tool.js";

const tools = requireTools("sidecar reload failures", "etcd");
const { test, t } = harnessSuite("sidecar reload failures", "etcd", tools !== undefined);

/** A reload command that fails while `gate` exists and otherwise appends the file's content to `log`. */
async function reloadScript(h: Harness): Promise<{ script: string; gate: string; log: string }> {
  const gate = join(h.dir, "reload-fails");
  const log = join(h.dir, "reloads.log");
  const script = join(h.dir, "reload.sh");
  const destination = join(h.dir, "app.conf");
  await writeFile(
    script,
    `#!/bin/sh\n[ -e "${gate}" ] && { echo "application refused the file" >&2; exit 1; }\ncat "${destination}" >> "${log}"\n`,
    { mode: 0o755 },
  );
  return { script, gate, log };
}

t("after a failed reload put the previous file back, the render is retried until the command works", async (h) => {
  const { script, gate, log } = await reloadScript(h);
  await writeFile(join(h.dir, "app.hbs"), 'v={{key "/app/v"}}\n');
  await h.client.put("/app/v", "1");
  const sidecar = await h.start({
    templates: [{ source: "app.hbs", destination: "app.conf", reload: { command: [script], timeout: "5s" } }],
  });
  const path = join(h.dir, "app.conf");
  await waitFor("the first reload", async () => (await readFile(log, "utf8").catch(() => "")) === "v=1\n");
  await writeFile(gate, "");
  await h.client.put("/app/v", "2");
  await waitFor("the failed reload", async () => /vigie_reload_failures_total 1/.test(h.metrics.render()));
  assert.is(await readFile(path, "utf8"), "v=1\n", "the file the application runs is back");
  // The application accepts files again; nothing changes in the store, yet the new file arrives and is loaded.
  await rm(gate);
  await waitFor("the retried reload", async () => (await readFile(log, "utf8")) === "v=1\nv=2\n", 8_000);
  assert.is(await readFile(path, "utf8"), "v=2\n");
  assert.ok(sidecar.status().healthy);
});

t("a reload command that fails after the first render keeps the new file: there was none to put back", async (h) => {
  const { script, gate } = await reloadScript(h);
  await writeFile(gate, "");
  await writeFile(join(h.dir, "app.hbs"), 'v={{key "/app/v"}}\n');
  await h.client.put("/app/v", "1");
  await h.start({
    templates: [{ source: "app.hbs", destination: "app.conf", reload: { command: [script], timeout: "5s" } }],
  });
  await waitFor("the failed reload", async () => /vigie_reload_failures_total 1/.test(h.metrics.render()));
  assert.is(await readFile(join(h.dir, "app.conf"), "utf8"), "v=1\n");
});

t("exec: the application starts once every destination is in place, not before (like consul-template)", async (h) => {
  const started = join(h.dir, "started.txt");
  await writeFile(join(h.dir, "a.hbs"), 'a={{key "/app/a"}}\n');
  await writeFile(join(h.dir, "b.hbs"), 'b={{key "/app/b"}}\n');
  // b.out is there from an earlier run: its failing render keeps it, and it does not hold the application back.
  await writeFile(join(h.dir, "b.out"), "b=earlier\n");
  const script = `cat "${join(h.dir, "a.out")}" "${join(h.dir, "b.out")}" > "${started}"; exec sleep 30`;
  const sidecar = await h.start({
    exec: { command: ["sh", "-c", script], restart: false },
    templates: [
      { source: "a.hbs", destination: "a.out", reload: { exec: true } },
      { source: "b.hbs", destination: "b.out", reload: { exec: true } },
    ],
  });
  await sidecar.firstRender;
  await new Promise((resolveWait) => setTimeout(resolveWait, 300));
  assert.is(await readFile(started, "utf8").catch(() => "not started"), "not started", "a.out is missing");
  await h.client.put("/app/a", "1");
  await waitFor("the application", async () => (await readFile(started, "utf8").catch(() => "")) !== "");
  assert.is(await readFile(started, "utf8"), "a=1\nb=earlier\n");
});

test.run();
