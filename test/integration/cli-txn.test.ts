// `vigie txn` against etcdctl 3.4's own `txn`: the same scripts (a failover's compare-and-swap, then the same swap
// again from a stale view, several compares at once, ranges and deletes) fed to etcdctl against one etcd, to vigie's
// CLI against another etcd, and to vigie's CLI against a vigie agent, each store starting empty. The three must
// print the same bytes (and, with -w json, the same JSON but for cluster and member ids).
import { spawn } from "node:child_process";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { ApiTarget } from "../helpers/api-suite.js";
import { CLI, requireBuiltCli } from "../helpers/cli-process.js";
import { startEtcd } from "../helpers/etcd.js";
import { requireTools } from "../helpers/require-tool.js";
import { startDevAgent } from "../helpers/vigie-agent.js";

async function run(
  command: string[],
  stdin: string | Buffer,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command[0]!, command.slice(1), {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, ETCDCTL_API: "3" },
  });
  // latin1: the bytes as they are (raw values are printed raw), compared one character per byte.
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("latin1");
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  child.stdin.end(stdin);
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, stdout, stderr };
}

/** A failover's compare-and-swap, the same swap again from a stale view, then several compares and requests. */
const SCRIPTS = [
  'value("/db/master") = "10.0.0.1"\n\nput /db/master 10.0.0.2\nget /db/master\n\nget /db/master\n\n',
  'value("/db/master") = "10.0.0.1"\n\nput /db/master 10.0.0.3\n\nget /db/master\n\n',
  [
    'version("/db/master") = "2"',
    'create("/db/none") = "0"',
    'mod("/db/master") > "1"',
    'val("/db/master") != "10.0.0.1"',
    "",
    'put "/db/old replica" 10.0.0.9',
    "put /db/replica 10.0.0.4 --prev-kv",
    "get /db/ --prefix",
    "del /db/none --prev-kv",
    "get /db/a /db/z --limit 1",
    "",
    "",
    "",
  ].join("\n"),
  'c("/db/master") = "2"\nm("/db/master") < "2"\n\nput /x y\n\ndel "/db/old replica" --prev-kv\nget /db/replica\n\n',
  // etcdctl's other spellings: every key from the first (keys only), --flag=true, values alone, sorted.
  '\nget "" --from-key --keys-only\nget /db/ --prefix=true --print-value-only --order=DESCEND --sort-by=VALUE\n\n\n',
  // Raw bytes typed in the input, and Go escapes for them.
  Buffer.concat([
    Buffer.from('\nput "/raw\\xfe" '),
    Buffer.from([0xff, 0x80, 0x41]),
    Buffer.from('\nget "/raw\\xfe"\n\n\n'),
  ]),
];

const JSON_SCRIPT = 'value("/db/master") = "10.0.0.2"\n\nput /db/master 10.0.0.5 --prev-kv\nget /db/master\n\n\n';

/** Run after JSON_SCRIPT set /db/master to 10.0.0.5. Nothing follows its last empty line: -i stops reading there. */
const INTERACTIVE_SCRIPT = 'value("/db/master") = "10.0.0.5"\n\nput /interactive 1\n\nget /interactive\n\n';

function withoutIds(text: string): unknown {
  return JSON.parse(text.replace(/"(cluster_id|member_id|raft_term)":\d+/g, '"$1":0'));
}

test("vigie txn prints what etcdctl txn prints, against etcd and against vigie", async () => {
  requireBuiltCli();
  const tools = requireTools("cli-txn", "etcd", "etcdctl");
  if (tools === undefined) return;
  const etcdForEtcdctl = await startEtcd({ name: "txn-etcdctl" });
  const etcdForVigie = await startEtcd({ name: "txn-vigie-cli" });
  const agent: ApiTarget = await startDevAgent();
  try {
    const clients = [
      { label: "etcdctl on etcd", command: [tools.etcdctl!, `--endpoints=${etcdForEtcdctl.clientUrl}`] },
      { label: "vigie on etcd", command: [CLI, "--endpoints", etcdForVigie.clientUrl] },
      { label: "vigie on vigie", command: [CLI, "--endpoints", agent.url] },
    ];
    const outputs: string[][] = clients.map(() => []);
    for (const [index, client] of clients.entries()) {
      const put = await run([...client.command, "put", "/db/master", "10.0.0.1"], "");
      assert.is(put.code, 0, `${client.label}: ${put.stderr}`);
      for (const script of SCRIPTS) {
        const result = await run([...client.command, "txn"], script);
        assert.is(result.code, 0, `${client.label}: ${result.stderr} (script ${JSON.stringify(script)})`);
        outputs[index]!.push(result.stdout);
      }
      const json = await run([...client.command, "txn", "-w", "json"], JSON_SCRIPT);
      assert.is(json.code, 0, `${client.label}: ${json.stderr}`);
      outputs[index]!.push(JSON.stringify(withoutIds(json.stdout)));
    }
    assert.is(outputs[0]![0], "SUCCESS\n\nOK\n\n/db/master\n10.0.0.2\n", "the swap");
    assert.is(outputs[0]![1], "FAILURE\n\n/db/master\n10.0.0.2\n", "the stale swap");
    assert.match(outputs[0]![2]!, /^SUCCESS\n\nOK\n\nOK\n\n\/db\/master\n10\.0\.0\.2\n/);
    assert.match(outputs[0]![3]!, /^FAILURE\n\n1\n\/db\/old replica\n10\.0\.0\.9\n\n\/db\/replica\n10\.0\.0\.4\n$/);
    assert.match(outputs[0]![4]!, /^SUCCESS\n\n\/db\/master\n\n/, "keys alone, each followed by an empty line");
    assert.is(outputs[0]![5], "SUCCESS\n\nOK\n\n/raw\xfe\n\xff\x80A\n", "raw bytes in and out");
    assert.equal(outputs[1], outputs[0], "vigie's CLI on etcd prints what etcdctl prints");
    assert.equal(outputs[2], outputs[0], "vigie's CLI on vigie prints what etcdctl prints on etcd");
    // -i: etcdctl's prompts before each section, then the same answer.
    const interactive = await Promise.all(
      clients.map((client) => run([...client.command, "txn", "-i"], INTERACTIVE_SCRIPT)),
    );
    for (const [index, result] of interactive.entries())
      assert.is(result.code, 0, `${clients[index]!.label}: ${result.stderr}`);
    assert.is(
      interactive[0]!.stdout,
      "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\nSUCCESS\n\nOK\n",
    );
    assert.equal(
      interactive.map((result) => result.stdout),
      clients.map(() => interactive[0]!.stdout),
      "vigie txn -i prompts as etcdctl txn -i does",
    );
    // Cut off inside its last section (a producer that died): etcdctl sends nothing, nor does vigie.
    const cut = await run([CLI, "--endpoints", agent.url, "txn"], 'val("/db/master") = "10.0.0.5"\n\nput /cut 1\n');
    assert.is(cut.code, 2);
    assert.match(cut.stderr, "the input ends inside its success requests");
    const after = await run([CLI, "--endpoints", agent.url, "get", "/cut"], "");
    assert.is(after.stdout, "", "nothing of the cut transaction was applied");
  } finally {
    await Promise.all([etcdForEtcdctl.stop(), etcdForVigie.stop(), agent.stop()]);
  }
});

test.run();
