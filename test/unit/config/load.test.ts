// The config loader's error messages are part of the user interface: these tests pin the exact text users see.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { storeEndpointsOf } from "../../../src/config/defaults.js";
import { loadConfig } from "../../../src/config/load.js";
import { ConfigError } from "../../../src/errors.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "../../fixtures/config");
const fixture = (name: string) => join(fixtures, name);

/** Writes `lines` to a fresh YAML file and returns the loader's error message for it. */
async function yamlError(lines: string[], overrides = {}): Promise<{ file: string; message: string }> {
  const dir = await mkdtemp(join(tmpdir(), "vigie-config-"));
  const file = join(dir, "vigie.yaml");
  try {
    await writeFile(file, `${lines.join("\n")}\n`);
    return { file, message: await configError(file, overrides) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function configError(file: string, overrides = {}): Promise<string> {
  try {
    await loadConfig(file, overrides);
  } catch (error) {
    assert.instance(error, ConfigError);
    assert.is((error as ConfigError).code, "VIGIE_ERR_CONFIG");
    return (error as Error).message;
  }
  throw new Error(`${file} loaded without error`);
}

test("a valid config converts durations, modes and signals", async () => {
  const { config, baseDir } = await loadConfig(fixture("good.yaml"));
  assert.is(baseDir, fixtures);
  const template = config.templates[0]!;
  assert.is(template.mode, 0o640);
  assert.equal(template.wait, { min: 250, max: 2000 });
  assert.equal(template.reload, { signal: "SIGHUP", pidfile: "/run/app.pid" });
  assert.equal(template.check, ["nginx", "-t", "-c", "{{src}}"]);
  assert.is(template.write, "rename");
  assert.is(template.backup, false);
  assert.is(config.services[0]!.ttl, 5000);
  assert.is(config.services[0]!.check!.timeout, 500);
  assert.is(config.listen_client, "http://127.0.0.1:23790");
  assert.is(config.listen_peer, "http://127.0.0.1:2380");
  assert.equal(storeEndpointsOf(config), ["http://127.0.0.1:23790"]);
  assert.is(config.voters, 3);
});

test("flags override the file", async () => {
  const { config } = await loadConfig(fixture("good.yaml"), { listen_client: "http://127.0.0.1:9999", voters: 5 });
  assert.is(config.listen_client, "http://127.0.0.1:9999");
  assert.is(config.voters, 5);
});

test("bad YAML names the file, line and column", async () => {
  const message = await configError(fixture("bad-yaml.yaml"));
  assert.match(message, /^.*bad-yaml\.yaml:4:1: invalid YAML: /);
});

test("an unknown field is an error at the key itself", async () => {
  assert.is(
    await configError(fixture("unknown-field.yaml")),
    `${fixture("unknown-field.yaml")}:2:5: templates[0].destination: is required\n` +
      `${fixture("unknown-field.yaml")}:3:5: templates[0].destinaton: unknown field "destinaton" (did you mean "destination"?)`,
  );
});

test("a flag's name written in the file, or a typo, suggests the field meant; a stranger gets no guess", async () => {
  const { file, message } = await yamlError([
    "data-dir: /var/lib/vigie",
    "logLevel: debug",
    "voter: 3",
    "services:",
    "  - name: web",
    "    address: 127.0.0.1:80",
    "    check: { htpp: 'http://127.0.0.1:80/' }",
    "colour: blue",
    "listen-peer-urls: http://127.0.0.1:2380",
  ]);
  assert.is(
    message,
    [
      `${file}:1:1: data-dir: unknown field "data-dir" (did you mean "data_dir"?)`,
      `${file}:2:1: logLevel: unknown field "logLevel" (did you mean "log_level"?)`,
      `${file}:3:1: voter: unknown field "voter" (did you mean "voters"?)`,
      `${file}:7:12: services[0].check: needs exactly one of http, tcp or exec`,
      `${file}:7:14: services[0].check.htpp: unknown field "htpp" (did you mean "http"?)`,
      `${file}:8:1: colour: unknown field "colour"`,
      `${file}:9:1: listen-peer-urls: unknown field "listen-peer-urls" (did you mean "listen_peer"?)`,
    ].join("\n"),
  );
});

test("a value of the wrong type says what it got, not that it is missing", async () => {
  const { file, message } = await yamlError(['voters: "3"', "dev: yes", `name: ${"x".repeat(100)}`, "join: [a]"]);
  assert.is(
    message,
    [
      `${file}:1:9: voters: expected number, got string "3"`,
      `${file}:2:6: dev: expected boolean, got string "yes"`,
      `${file}:4:7: join: expected string, got a list`,
    ].join("\n"),
  );
  const choices = await yamlError([
    "voters: 3.5",
    "log_level: WARN",
    "templates:",
    "  - { source: a, destination: b, write: inplace }",
  ]);
  assert.is(
    choices.message,
    [
      `${choices.file}:1:9: voters: expected a whole number, got number 3.5`,
      `${choices.file}:2:12: log_level: must be one of trace, debug, info, warn, error, fatal, silent, got string "WARN"`,
      `${choices.file}:4:41: templates[0].write: must be one of rename, in-place, got string "inplace"`,
    ].join("\n"),
  );
  const long = await yamlError([`voters: "${"9".repeat(100)}"`]);
  assert.is(long.message, `${long.file}:1:9: voters: expected number, got string "${"9".repeat(59)}...`);
});

test("a bad duration says what a good one looks like", async () => {
  assert.is(
    await configError(fixture("bad-duration.yaml")),
    `${fixture("bad-duration.yaml")}:4:18: templates[0].wait.min: invalid duration "10 seconds" ` +
      "(expected a number and a unit: ms, s, m or h, like 250ms, 10s or 1m30s)",
  );
});

test("an empty value says it is empty; a schema's own message is kept", async () => {
  const { file, message } = await yamlError([
    'name: ""',
    "store_endpoints: []",
    "templates:",
    "  - { source: a, destination: b, check: [] }",
  ]);
  assert.is(
    message,
    [
      `${file}:1:7: name: must not be empty`,
      `${file}:2:18: store_endpoints: needs at least one entry`,
      `${file}:4:41: templates[0].check: must name a program (argv array, first element is the program)`,
    ].join("\n"),
  );
});

test("a duration longer than node's timers can wait is refused (it would fire after 1 ms)", async () => {
  const { file, message } = await yamlError([
    "services:",
    "  - name: web",
    "    address: 127.0.0.1:80",
    "    check: { http: 'http://127.0.0.1:80/', interval: 1000h }",
    "    ttl: 596h",
  ]);
  assert.is(message, `${file}:4:54: services[0].check.interval: duration "1000h" is too long: at most 596h`);
});

test("a misspelt signal is reported at its line with the field path", async () => {
  assert.is(
    await configError(fixture("bad-signal.yaml")),
    `${fixture("bad-signal.yaml")}:6:23: templates[1].reload.signal: unknown signal "SIGHPU"`,
  );
});

test("a missing template file is reported with its resolved path", async () => {
  assert.is(
    await configError(fixture("missing-template.yaml")),
    `${fixture("missing-template.yaml")}:2:13: templates[0].source: template file not found: ${fixture("does-not-exist.hbs")}`,
  );
});

test("every problem is reported at once, not only the first", async () => {
  const file = fixture("several-errors.yaml");
  assert.is(
    await configError(file),
    [
      `${file}:1:9: voters: must be at most 7`,
      `${file}:5:11: templates[0].mode: invalid file mode "999" (expected octal like "0644")`,
      `${file}:8:14: services[0].address: must be "host:port"`,
      `${file}:9:10: services[0].ttl: duration 5 needs a unit (ms, s, m or h), like "5s"`,
    ].join("\n"),
  );
});

test("a bad flag value names the flag, not the file", async () => {
  assert.is(await configError(fixture("good.yaml"), { voters: 0 }), "flag --voters: must be at least 1");
  assert.is(
    await configError(fixture("good.yaml"), { listen_client: "localhost:2379" }),
    "flag --listen-client: must be an http:// or https:// URL",
  );
});

test("a missing config file is a clear error", async () => {
  assert.is(
    await configError("/nonexistent/vigie.yaml"),
    "/nonexistent/vigie.yaml: cannot read config: file not found",
  );
  assert.is(await configError(fixtures), `${fixtures}: cannot read config: it is a directory, not a file`);
});

test("no file and no flags gives the defaults", async () => {
  const { config, file } = await loadConfig(undefined);
  assert.is(file, undefined);
  assert.equal(config.templates, []);
  assert.is(config.log_level, "info");
  assert.is(config.listen_client, undefined);
  assert.equal(storeEndpointsOf(config), ["http://127.0.0.1:2379"]);
});

test.run();
