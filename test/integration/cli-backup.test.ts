// `vigie backup` and `vigie restore` as real processes, against vigie and against etcd 3.4: every key without a
// lease (more than one page of them, binary bytes, a value too large to share a transaction) goes from one store to
// a fresh one; leased keys stay out; the file is private; a truncated, edited or foreign file is refused naming the
// file and changes nothing.
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StoreClient } from "../../src/store/client.js";
import type { ApiTarget } from "../helpers/api-suite.js";
import { requireBuiltCli, runCliAgainst } from "../helpers/cli-process.js";
import { startEtcd } from "../helpers/etcd.js";
import { requireTools } from "../helpers/require-tool.js";
import { startDevAgent } from "../helpers/vigie-agent.js";

const KEYS = 2500;
const BINARY_KEY = Buffer.from([0x2f, 0x62, 0xff, 0x00, 0x01]);
const BINARY_VALUE = Buffer.from([0x00, 0xfe, 0x80, 0x0a]);
const LARGE_VALUE = Buffer.alloc(700 * 1024, "L");

async function everyKey(url: string): Promise<Array<[string, string, string]>> {
  const client = new StoreClient({ endpoints: [url], maxResponseBytes: 64 * 1024 * 1024 });
  try {
    const { kvs } = await client.range(Buffer.from([0]), { rangeEnd: Buffer.from([0]) });
    return kvs.map((kv) => [kv.key.toString("hex"), kv.value.toString("hex"), kv.lease]);
  } finally {
    await client.close();
  }
}

async function fill(url: string): Promise<void> {
  const client = new StoreClient({ endpoints: [url] });
  try {
    for (let from = 0; from < KEYS; from += 100) {
      const success = [];
      for (let i = from; i < from + 100; i++)
        success.push({ put: `/app/${String(i).padStart(5, "0")}`, value: `v${i}` });
      await client.txn({ success });
    }
    await client.put(BINARY_KEY, BINARY_VALUE);
    await client.put("/db/large", LARGE_VALUE);
    const lease = await client.leaseGrant(60);
    await client.put("/services/web/1", "registered", { lease: lease.id });
  } finally {
    await client.close();
  }
}

for (const kind of ["vigie", "etcd"] as const) {
  test(`backup and restore move every key without a lease to a fresh store (${kind})`, async () => {
    requireBuiltCli();
    if (kind === "etcd" && requireTools("cli-backup", "etcd") === undefined) return;
    const start = (name: string): Promise<ApiTarget> =>
      kind === "vigie"
        ? startDevAgent()
        : startEtcd({ name }).then((etcd) => ({ url: etcd.clientUrl, stop: () => etcd.stop() }));
    const dir = await mkdtemp(join(tmpdir(), "vigie-backup-test-"));
    const [source, target] = await Promise.all([start("backup-source"), start("backup-target")]);
    try {
      await fill(source.url);
      const file = join(dir, "store.backup");
      const saved = await runCliAgainst(source.url, ["backup", file]);
      assert.is(saved.code, 0, saved.stderr);
      const count = KEYS + 2;
      assert.match(
        saved.stdout.toString(),
        new RegExp(`^backed up ${count} keys at revision \\d+ to ${file} \\(1 keys on leases left out: .*\\)\\n$`),
      );
      assert.is((await stat(file)).mode & 0o777, 0o600, "the values may be secrets");
      const nowhere = join(dir, "missing", "store.backup");
      const unwritable = await runCliAgainst(source.url, ["backup", nowhere]);
      assert.equal(
        [unwritable.code, unwritable.stderr],
        [1, `vigie: cannot write ${nowhere}: no directory ${join(dir, "missing")}\n`],
      );

      const restored = await runCliAgainst(target.url, ["restore", file]);
      assert.is(restored.code, 0, restored.stderr);
      assert.match(restored.stdout.toString(), `restored ${count} keys from ${file} (backed up at revision `);
      const expected = (await everyKey(source.url)).filter(([, , lease]) => lease === "0");
      assert.is(expected.length, count);
      assert.equal(await everyKey(target.url), expected);

      // Damaged files are refused before anything is written.
      const lines = (await readFile(file, "utf8")).trimEnd().split("\n");
      const damaged: Array<[string, string[], string]> = [
        ["truncated", lines.slice(0, -1), `ends after ${count} keys without its trailer: the file is truncated`],
        [
          "edited",
          lines.map((line, i) => (i === 5 ? line.replace(/"value":"[^"]*"/, '"value":"ZWRpdGVk"') : line)),
          "the key lines do not match the trailer's checksum: the file was changed",
        ],
        ["foreign", ['{"format":"something-else"}', ...lines.slice(1)], "line 1: not a vigie-backup file"],
        ["broken", [lines[0]!, "{not json", ...lines.slice(2)], "line 2: not a JSON object"],
        [
          "extended",
          [...lines, '{"key":"","value":""}'],
          `line ${lines.length + 1}: text after the trailer (line ${lines.length})`,
        ],
      ];
      const fresh = await start("backup-fresh");
      try {
        for (const [label, content, message] of damaged) {
          const bad = join(dir, `${label}.backup`);
          await writeFile(bad, `${content.join("\n")}\n`);
          const refused = await runCliAgainst(fresh.url, ["restore", bad]);
          assert.is(refused.code, 1, `${label}: ${refused.stderr}`);
          assert.is(refused.stderr, `vigie: ${bad}: ${message}\n`, label);
        }
        assert.equal(await everyKey(fresh.url), [], "a refused restore writes nothing");
      } finally {
        await fresh.stop();
      }
    } finally {
      await Promise.all([source.stop(), target.stop()]);
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test.run();
