// The CLI contract: every subcommand has help, config errors come before anything else, exit codes are stable.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const fixtures = join(root, "test/fixtures/config");

function vigie(...args: string[]) {
  const result = spawnSync(process.execPath, ["--import", "tsx", join(root, "src/cli.ts"), ...args], {
    cwd: root,
    encoding: "utf8",
    timeout: 20_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test("every subcommand prints its help and exits 0", () => {
  const commands = ["agent", "render", "get", "put", "del", "watch", "lease", "member", "status", "services"];
  const top = vigie("--help");
  assert.is(top.code, 0);
  assert.match(top.stdout, /Exit codes: 0 done; 1 .*\n2 bad usage; 3 invalid config; 4 no endpoint/);
  for (const command of commands) {
    assert.match(top.stdout, new RegExp(`\\n  ${command}\\b`), `top-level help lists ${command}`);
    const help = vigie(command, "--help");
    assert.is(help.code, 0, `${command} --help`);
    assert.match(help.stdout, `Usage: vigie ${command}`);
  }
  assert.match(vigie("agent", "--help").stdout, "--initial-cluster <list>");
  assert.match(vigie("lease", "--help").stdout, "keepalive|keep-alive <id>"); // etcdctl spells it keep-alive
});

test("render validates the whole config before anything else", () => {
  const file = join(fixtures, "bad-signal.yaml");
  const result = vigie("render", "--once", "--dry", "--config", file);
  assert.is(result.code, 3);
  assert.is(result.stderr, `vigie: ${file}:6:23: templates[1].reload.signal: unknown signal "SIGHPU"\n`);
  assert.is(result.stdout, "");
});

test("agent validates the config and its flags before starting", () => {
  const file = join(fixtures, "several-errors.yaml");
  const result = vigie("agent", "--config", file, "--voters", "3");
  assert.is(result.code, 3);
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines, [
    `vigie: ${file}:5:11: templates[0].mode: invalid file mode "999" (expected octal like "0644")`,
    `vigie: ${file}:8:14: services[0].address: must be "host:port"`,
    `vigie: ${file}:9:10: services[0].ttl: duration 5 needs a unit (ms, s, m or h), like "5s"`,
  ]);
  const flag = vigie("agent", "--listen-client", "localhost:2379", "--dev");
  assert.is(flag.code, 3);
  assert.is(flag.stderr, "vigie: flag --listen-client: must be an http:// or https:// URL\n");
});

test("etcd's flag names and Go's one-dash flags get a hint to vigie's flag", () => {
  const cases: Array<[string[], string]> = [
    [["--listen-client-urls", "http://127.0.0.1:2379"], "(vigie's flag is --listen-client URL"],
    [["--advertise-client-urls", "http://127.0.0.1:2379"], "(vigie's flag is --advertise-client URL (one URL))"],
    [["--initial-advertise-peer-urls", "http://127.0.0.1:2380"], "(vigie's flag is --advertise-peer URL (one URL))"],
    [["--listen-peer-urls", "http://127.0.0.1:2380"], "(vigie's flag is --listen-peer URL"],
    [
      ["--initial-cluster-state", "new"],
      "(a new cluster starts with --initial-cluster; join a running one with --join",
    ],
    [["-name", "a"], "(did you mean --name?)"],
  ];
  for (const [args, hint] of cases) {
    const result = vigie("agent", ...args);
    assert.is(result.code, 2, args[0]);
    assert.match(result.stderr, `error: unknown option '${args[0]}'\n${hint}`, args[0]);
  }
  assert.match(vigie("agent", "--help").stdout, /\(default: the\s+host\s+name\)/);
});

test("usage errors exit 2 and name the flag", () => {
  const result = vigie("agent", "--voters", "three");
  assert.is(result.code, 2);
  assert.match(result.stderr, `--voters expects a whole number, got "three"`);
  const endpoints = vigie("get", "k", "--endpoints", "not a url");
  assert.is(endpoints.code, 2);
  assert.match(endpoints.stderr, `"not a url" is not an endpoint URL`);
  assert.is(vigie("no-such-command").code, 2);
});

test.run();
