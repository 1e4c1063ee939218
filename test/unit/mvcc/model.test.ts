// Property tests: random sequences of puts, deletes, txns, compactions and (historical) ranges give the same
// results on the store as on a deliberately naive model (a full copy of the key space per revision). A watcher
// started at the beginning sees exactly the model's changes, and snapshot/restore preserves every answer.
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { RangeResponse } from "../../../src/store/mvcc/commands.js";
import { decodeCommand, encodeCommand } from "../../../src/store/mvcc/commands.js";
import { KvStore } from "../../../src/store/mvcc/kv-store.js";
import { b, s } from "./helpers.js";

const KEYS = ["a", "ab", "b", "b\u00ff", "c/1", "c/2", "d"];

interface ModelKv {
  value: string;
  create: number;
  mod: number;
  version: number;
  lease: number;
}
type ModelState = Map<string, ModelKv>;

type Op =
  | { kind: "put"; key: string; value: string; lease: number }
  | { kind: "grant"; id: number }
  | { kind: "revoke"; id: number }
  | { kind: "del"; key: string; end: string | null }
  | { kind: "txn"; key: string; version: number; put: string; del: string }
  | { kind: "compact"; back: number }
  | { kind: "range"; key: string; end: string | null; back: number; limit: number };

const keyArb = fc.constantFrom(...KEYS);
const endArb = fc.option(fc.constantFrom("b", "c", "c/2", "zz", "\0"), { nil: null });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("put" as const),
      key: keyArb,
      value: fc.string({ maxLength: 4 }),
      lease: fc.constantFrom(0, 1, 2),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("grant" as const), id: fc.constantFrom(1, 2) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("revoke" as const), id: fc.constantFrom(1, 2) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("del" as const), key: keyArb, end: endArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("txn" as const),
      key: keyArb,
      version: fc.nat(3),
      put: keyArb,
      del: keyArb,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("compact" as const), back: fc.nat(6) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("range" as const),
      key: keyArb,
      end: endArb,
      back: fc.nat(8),
      limit: fc.nat(3),
    }),
  },
);

class Model {
  states: ModelState[] = [new Map(), new Map()]; // index = revision; revision 1 is the empty start
  /** etcd's compaction revision starts at -1: the first compaction at revision 0 succeeds. */
  compacted = -1;
  events: string[] = [];
  get revision(): number {
    return this.states.length - 1;
  }
  get current(): ModelState {
    return this.states[this.revision]!;
  }
  /** Applies changes as one revision (if any). */
  leases = new Set<number>();
  write(changes: { key: string; value: string | null; lease?: number }[]): void {
    if (changes.length === 0) return;
    const next = new Map(this.current);
    const rev = this.revision + 1;
    for (const { key, value, lease } of changes) {
      if (value === null) {
        next.delete(key);
        this.events.push(`DELETE ${key}@${rev}`);
      } else {
        const prev = next.get(key);
        next.set(key, {
          value,
          create: prev?.create ?? rev,
          mod: rev,
          version: (prev?.version ?? 0) + 1,
          lease: lease ?? 0,
        });
        this.events.push(`PUT ${key}=${value}@${rev}`);
      }
    }
    this.states.push(next);
  }
  keysIn(state: ModelState, key: string, end: string | null): string[] {
    return [...state.keys()].filter((k) => (end === null ? k === key : k >= key && (end === "\0" || k < end))).sort();
  }
}

function rangeOf(kvs: RangeResponse["kvs"]): string[] {
  return kvs.map(
    (kv) => `${s(kv.key)}=${s(kv.value)} c${kv.create_revision} m${kv.mod_revision} v${kv.version} l${kv.lease}`,
  );
}

function modelRange(model: Model, key: string, end: string | null, revision: number, limit: number) {
  const state = model.states[revision]!;
  const keys = model.keysIn(state, key, end);
  const shown = limit > 0 ? keys.slice(0, limit) : keys;
  return {
    kvs: shown.map((k) => {
      const kv = state.get(k)!;
      return `${k}=${kv.value} c${kv.create} m${kv.mod} v${kv.version} l${kv.lease}`;
    }),
    count: keys.length,
    more: limit > 0 && keys.length > limit,
  };
}

function outcome(fn: () => unknown): string {
  try {
    return JSON.stringify(fn());
  } catch (error) {
    return `error: ${(error as Error).message}`;
  }
}

function runOps(ops: Op[]): void {
  const store = new KvStore({ clock: () => 0 });
  const model = new Model();
  const watcher = store.watch({ key: b("\0"), range_end: b("\0") });
  let index = 0;
  const apply = (command: Parameters<KvStore["apply"]>[0]) => {
    // Every command also goes through the Raft-log codec, as in production.
    const result = store.apply(decodeCommand(encodeCommand(command)), ++index);
    if (!result.ok) throw result.error;
    return result.response;
  };
  for (const op of ops) {
    switch (op.kind) {
      case "put": {
        const actual = outcome(() =>
          apply({ type: "put", request: { key: b(op.key), value: b(op.value), lease: op.lease } }),
        );
        if (op.lease !== 0 && !model.leases.has(op.lease)) {
          assert.is(actual, "error: etcdserver: requested lease not found");
        } else {
          model.write([{ key: op.key, value: op.value, lease: op.lease }]);
        }
        break;
      }
      case "grant": {
        const actual = outcome(() => apply({ type: "leaseGrant", request: { ID: op.id, TTL: 60 } }));
        if (model.leases.has(op.id)) assert.is(actual, "error: etcdserver: lease already exists");
        else model.leases.add(op.id);
        break;
      }
      case "revoke": {
        const actual = outcome(() => apply({ type: "leaseRevoke", request: { ID: op.id } }));
        if (!model.leases.has(op.id)) {
          assert.is(actual, "error: etcdserver: requested lease not found");
          break;
        }
        model.leases.delete(op.id);
        const attached = [...model.current].filter(([, kv]) => kv.lease === op.id).map(([key]) => key);
        model.write(attached.sort().map((key) => ({ key, value: null })));
        break;
      }
      case "del": {
        const request = op.end === null ? { key: b(op.key) } : { key: b(op.key), range_end: b(op.end) };
        const response = apply({ type: "deleteRange", request }) as { deleted: number };
        const victims = model.keysIn(model.current, op.key, op.end);
        assert.is(response.deleted, victims.length);
        model.write(victims.map((key) => ({ key, value: null })));
        break;
      }
      case "txn": {
        const succeeded = (model.current.get(op.key)?.version ?? 0) === op.version;
        const response = apply({
          type: "txn",
          request: {
            compare: [{ key: b(op.key), target: "VERSION", result: "EQUAL", version: op.version }],
            success: [{ request_put: { key: b(op.put), value: b("t") } }],
            failure: [{ request_delete_range: { key: b(op.del) } }],
          },
        }) as { succeeded: boolean };
        assert.is(response.succeeded, succeeded);
        if (succeeded) model.write([{ key: op.put, value: "t" }]);
        else model.write(model.current.has(op.del) ? [{ key: op.del, value: null }] : []);
        break;
      }
      case "compact": {
        const revision = model.revision - op.back;
        const actual = outcome(() => apply({ type: "compaction", request: { revision } }));
        if (revision <= model.compacted) assert.match(actual, "compacted");
        else if (revision > model.revision) assert.match(actual, "future");
        else {
          assert.not.match(actual, "error");
          model.compacted = revision;
        }
        break;
      }
      case "range": {
        const revision = Math.max(1, model.revision - op.back);
        const request = {
          key: b(op.key),
          revision,
          limit: op.limit,
          ...(op.end === null ? {} : { range_end: b(op.end) }),
        };
        const actual = outcome(() => {
          const r = store.range(request);
          return { kvs: rangeOf(r.kvs), count: r.count, more: r.more };
        });
        const expected =
          revision < model.compacted
            ? "error: etcdserver: mvcc: required revision has been compacted"
            : JSON.stringify(modelRange(model, op.key, op.end, revision, op.limit));
        assert.is(actual, expected, `range ${JSON.stringify(op)} at ${revision}`);
        break;
      }
    }
    assert.is(store.revision, model.revision);
  }
  const seen: string[] = [];
  for (let r = watcher.tryNext(); r !== undefined; r = watcher.tryNext()) {
    for (const e of r.events) {
      seen.push(
        e.type === "PUT"
          ? `PUT ${s(e.kv.key)}=${s(e.kv.value)}@${e.kv.mod_revision}`
          : `DELETE ${s(e.kv.key)}@${e.kv.mod_revision}`,
      );
    }
  }
  assert.equal(seen, model.events, "the watcher saw every change, in order");
  // Snapshot/restore answers every non-compacted revision identically.
  const copy = new KvStore({ clock: () => 0 });
  const bytes = store.snapshot();
  // Written behind room for a header (the Raft snapshot's), the bytes are the same.
  assert.ok(Buffer.from(bytes).equals(store.snapshot(7).subarray(7)), "a snapshot behind headroom differs");
  copy.restore(bytes);
  assert.is(copy.revision, store.revision);
  for (let rev = Math.max(1, model.compacted); rev <= model.revision; rev++) {
    const all = { key: b("\0"), range_end: b("\0"), revision: rev };
    assert.equal(rangeOf(copy.range(all).kvs), rangeOf(store.range(all).kvs), `restored revision ${rev}`);
  }
}

test("random operation sequences match the model (ranges, history, compaction, txn, watch, snapshot)", () => {
  fc.assert(fc.property(fc.array(opArb, { maxLength: 60, size: "max" }), runOps), { numRuns: 300 });
});

test("the command codec round-trips arbitrary requests", () => {
  const bytes = fc.uint8Array({ maxLength: 8 });
  const put = fc.record({
    key: bytes,
    value: bytes,
    lease: fc.nat(),
    prev_kv: fc.boolean(),
    ignore_value: fc.boolean(),
    ignore_lease: fc.boolean(),
  });
  const range = fc.record({
    key: bytes,
    range_end: bytes,
    limit: fc.integer(),
    revision: fc.integer(),
    sort_order: fc.constantFrom("NONE" as const, "ASCEND" as const, "DESCEND" as const),
    sort_target: fc.constantFrom(
      "KEY" as const,
      "VERSION" as const,
      "CREATE" as const,
      "MOD" as const,
      "VALUE" as const,
    ),
    serializable: fc.boolean(),
    keys_only: fc.boolean(),
    count_only: fc.boolean(),
    min_mod_revision: fc.nat(),
    max_mod_revision: fc.nat(),
    min_create_revision: fc.nat(),
    max_create_revision: fc.nat(),
  });
  const compare = fc.record({
    result: fc.constantFrom("EQUAL" as const, "GREATER" as const, "LESS" as const, "NOT_EQUAL" as const),
    target: fc.constant("VALUE" as const),
    key: bytes,
    range_end: bytes,
    value: bytes,
  });
  const txn = fc.record({
    compare: fc.array(compare, { maxLength: 3 }),
    success: fc.array(
      fc.oneof(
        put.map((p) => ({ request_put: p })),
        range.map((r) => ({ request_range: r })),
      ),
      { maxLength: 3 },
    ),
    failure: fc.array(
      fc.record({ key: bytes, range_end: bytes, prev_kv: fc.boolean() }).map((d) => ({ request_delete_range: d })),
      {
        maxLength: 3,
      },
    ),
  });
  const command = fc.oneof(
    put.map((request) => ({ type: "put" as const, request })),
    range.map((request) => ({ type: "range" as const, request })),
    txn.map((request) => ({ type: "txn" as const, request })),
    fc.record({ TTL: fc.integer(), ID: fc.nat() }).map((request) => ({ type: "leaseGrant" as const, request })),
  );
  fc.assert(
    fc.property(command, (c) => {
      // Compared as JSON: fast-check builds null-prototype objects, and bytes become number arrays.
      const json = (x: unknown) => JSON.stringify(x, (_k, v) => (v instanceof Uint8Array ? Array.from(v) : v));
      assert.is(json(decodeCommand(encodeCommand(c))), json(c));
    }),
    { numRuns: 500 },
  );
});

test("decoding refuses foreign or truncated bytes with a clear error", () => {
  const good = encodeCommand({ type: "put", request: { key: b("k"), value: b("v") } });
  for (let cut = 0; cut < good.length; cut++) {
    assert.throws(() => decodeCommand(good.subarray(0, cut)), /cannot decode store command/);
  }
  assert.throws(() => decodeCommand(Uint8Array.of(9, 1)), /unknown format/);
  assert.throws(() => decodeCommand(Uint8Array.of(1, 99)), /unknown command tag/);
  const corruptSnapshot = new KvStore().snapshot();
  corruptSnapshot[3]! ^= 1;
  assert.throws(() => new KvStore().restore(corruptSnapshot), /checksum mismatch/);
});

test.run();
