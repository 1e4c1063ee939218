// The configured templates as the sidecar and `vigie render` build them: names for logs, and the mistakes in a
// template list that no single template's schema can see (two templates writing one file), refused up front.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { configSchema } from "../../../src/config/schema.js";
import { ConfigError, type VigieError } from "../../../src/errors.js";
import { silentLogger } from "../../../src/log.js";
import { MetricsRegistry } from "../../../src/metrics.js";
import { startSidecar } from "../../../src/sidecar/sidecar.js";
import { buildRuntimes } from "../../../src/sidecar/template-runtime.js";

function templates(list: unknown[]) {
  return configSchema.parse({ templates: list }).templates;
}

test("names: the source's base name, or name; duplicates numbered", () => {
  const runtimes = buildRuntimes(
    templates([
      { source: "a.hbs", destination: "/tmp/x/1" },
      { source: "other/a.hbs", destination: "/tmp/x/2" },
      { source: "b.hbs", destination: "/tmp/x/3", name: "bee" },
    ]),
    "/etc/vigie",
  );
  assert.equal(
    runtimes.map((r) => [r.name, r.sourcePath, r.spec.destination]),
    [
      ["a.hbs", "/etc/vigie/a.hbs", "/tmp/x/1"],
      ["a.hbs#2", "/etc/vigie/other/a.hbs", "/tmp/x/2"],
      ["bee", "/etc/vigie/b.hbs", "/tmp/x/3"],
    ],
  );
});

test("check_timeout bounds the check (default 30s, like consul-template's command timeout)", () => {
  const [withTimeout, byDefault] = buildRuntimes(
    templates([
      { source: "a.hbs", destination: "/tmp/x/1", check: ["nginx", "-t", "-c", "{{src}}"], check_timeout: "2s" },
      { source: "b.hbs", destination: "/tmp/x/2", check: ["true"] },
    ]),
    "/etc/vigie",
  );
  assert.is(withTimeout?.spec.checkTimeoutMs, 2_000);
  assert.is(byDefault?.spec.checkTimeoutMs, 30_000);
});

test("a check_timeout or reload command timeout of 0 is refused (every check or reload would time out at once)", () => {
  for (const [fields, message] of [
    [{ check: ["true"], check_timeout: 0 }, "templates[0].check_timeout: must be more than 0"],
    [{ reload: { command: ["true"], timeout: 0 } }, "templates[0].reload.timeout: must be more than 0"],
  ] as const) {
    assert.throws(
      () => buildRuntimes(templates([{ source: "a.hbs", destination: "/tmp/x/1", ...fields }]), "/etc/vigie"),
      (error: unknown) => error instanceof ConfigError && (error as Error).message === message,
    );
  }
});

test("two templates with one destination are refused, naming both (they would overwrite each other forever)", () => {
  try {
    buildRuntimes(
      templates([
        { source: "a.hbs", destination: "out/app.conf" },
        { source: "b.hbs", destination: "/srv/ok.conf" },
        { source: "c.hbs", destination: "/etc/vigie/./out/app.conf" },
      ]),
      "/etc/vigie",
    );
    assert.unreachable("a shared destination must be refused");
  } catch (error) {
    assert.instance(error, ConfigError);
    assert.match(
      (error as Error).message,
      "templates[2].destination: /etc/vigie/out/app.conf is already the destination of templates[0]",
    );
  }
});

test("reload { exec: true } without an exec: section is refused when the sidecar starts, not at the first reload", async () => {
  const config = configSchema.parse({
    templates: [{ source: "/dev/null", destination: "/tmp/vigie-never-written", reload: { exec: true } }],
  });
  try {
    const sidecar = await startSidecar({
      config,
      configFile: undefined,
      baseDir: "/tmp",
      endpoints: ["http://127.0.0.1:9"],
      logger: silentLogger(),
      metrics: new MetricsRegistry(),
    });
    await sidecar.stop();
    assert.unreachable("the sidecar must refuse the config");
  } catch (error) {
    assert.instance(error, ConfigError);
    assert.match((error as Error).message, "templates[0].reload: exec: true needs an exec: section");
  }
});

test("an empty template source is not compiled: a save by truncate-then-write must not render an empty file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-template-runtime-"));
  try {
    const source = join(dir, "db.php.hbs");
    await writeFile(source, 'host={{key "/db/host"}}\n');
    const [runtime] = buildRuntimes(templates([{ source, destination: join(dir, "db.php") }]), dir);
    assert.ok(await runtime!.compile());
    const good = runtime!.compiled;
    await writeFile(source, "");
    assert.is(await runtime!.reread(), "failed");
    assert.is((runtime!.compileError as VigieError).code, "VIGIE_ERR_TEMPLATE_EMPTY");
    assert.match(runtime!.compileError!.message, `${source}: the template is empty (still being written?)`);
    assert.is(runtime!.compiled, good, "the last good version stays in use");
    // The write completes: compiled again. A comment alone is a template meant to render nothing.
    await writeFile(source, "{{! nothing here }}");
    assert.is(await runtime!.reread(), "compiled");
    assert.is(runtime!.compileError, undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
