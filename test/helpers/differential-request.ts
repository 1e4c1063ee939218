// Turns a target-independent differential op (differential-ops.ts) into the concrete request for ONE target:
// keys under the run's prefix, revisions made absolute from the target's starting revision, leases resolved to the
// ids that target granted. The wire spelling varies with the op's position (snake_case or lowerCamel names, int64
// as strings or numbers, enums by name or number), which etcd's gateway accepts in every combination.

import { mistypeBody } from "./differential-mistype.js";
import type { CompareSpec, LeaseRef, Op, RangeEndSpec, RevSpec, TxnChild } from "./differential-ops.js";
import { KEY_SUFFIXES, VALUES } from "./differential-ops.js";

export interface TargetRun {
  /** The revision of the target when the run started: every relative revision counts from it. */
  base: number;
  /** The run's key prefix (the same on both targets). */
  prefix: string;
  /** Lease ids this target granted during the run, in order of grant. */
  leases: string[];
  /** Explicit lease ids of this run are leaseIdBase + 1, + 2 (the same on both targets). */
  leaseIdBase: number;
}

/** How a request is spelled on the wire (all three are etcd-valid). */
interface Style {
  camel: boolean;
  intsAsNumbers: boolean;
  enumsAsNumbers: boolean;
}

const SORT_ORDERS = ["NONE", "ASCEND", "DESCEND"];
const SORT_TARGETS = ["KEY", "VERSION", "CREATE", "MOD", "VALUE"];
const COMPARE_RESULTS = ["EQUAL", "GREATER", "LESS", "NOT_EQUAL"];
const COMPARE_TARGETS = ["VERSION", "CREATE", "MOD", "VALUE", "LEASE"];

export function styleFor(position: number): Style {
  return { camel: position % 3 === 1, intsAsNumbers: position % 3 !== 0, enumsAsNumbers: position % 2 === 1 };
}

const b64 = (bytes: Buffer) => bytes.toString("base64");
const latin1 = (text: string) => Buffer.from(text, "latin1");

/** etcd's prefix end: the key with its last byte below 0xff incremented and the rest cut; "\0" when none. */
export function prefixEnd(key: Buffer): Buffer {
  for (let i = key.length - 1; i >= 0; i--) {
    if (key[i]! < 0xff) {
      const end = Buffer.from(key.subarray(0, i + 1));
      end[i] = key[i]! + 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

export class RequestBuilder {
  constructor(
    private readonly run: TargetRun,
    private readonly style: Style,
  ) {}

  keyBytes(index: number): Buffer {
    return latin1(this.run.prefix + KEY_SUFFIXES[index]!);
  }

  private name(snake: string): string {
    return this.style.camel ? snake.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()) : snake;
  }

  private int(value: number): string | number {
    return this.style.intsAsNumbers ? value : String(value);
  }

  /** A lease id: etcd's exceed 2^53, so they go as JSON numbers only when a double holds them exactly. */
  private leaseInt(id: string): string | number {
    return Number.isSafeInteger(Number(id)) ? this.int(Number(id)) : id;
  }

  private enumOf(names: readonly string[], index: number): string | number {
    return this.style.enumsAsNumbers ? index : names[index]!;
  }

  revision(spec: RevSpec): number {
    return "rel" in spec ? this.run.base + spec.rel : spec.literal;
  }

  lease(ref: LeaseRef): string {
    if ("none" in ref) return "0";
    if ("bogus" in ref) return String(ref.bogus);
    return this.run.leases[ref.granted] ?? "424243";
  }

  private rangeEnd(keyIndex: number, spec: RangeEndSpec): Buffer | undefined {
    switch (spec.kind) {
      case "none":
        return undefined;
      case "prefix":
        return prefixEnd(this.keyBytes(keyIndex));
      case "all":
        return Buffer.from([0]);
      case "key":
        return this.keyBytes(spec.key);
      case "runEnd":
        return prefixEnd(latin1(this.run.prefix));
    }
  }

  /** Sets `field` in `body` when `value` is defined, spelled in this request's style. */
  private set(body: Record<string, unknown>, field: string, value: unknown): void {
    if (value !== undefined) body[this.name(field)] = value;
  }

  rangeBody(op: Extract<TxnChild, { op: "range" }>): Record<string, unknown> {
    const body: Record<string, unknown> = {};
    this.set(body, "key", b64(this.keyBytes(op.key)));
    const end = this.rangeEnd(op.key, op.end);
    if (end !== undefined) this.set(body, "range_end", b64(end));
    if (op.limit !== undefined) this.set(body, "limit", this.int(op.limit));
    if (op.revision !== undefined) this.set(body, "revision", this.int(this.revision(op.revision)));
    if (op.sortOrder !== undefined) this.set(body, "sort_order", this.enumOf(SORT_ORDERS, op.sortOrder));
    if (op.sortTarget !== undefined) this.set(body, "sort_target", this.enumOf(SORT_TARGETS, op.sortTarget));
    this.set(body, "serializable", op.serializable);
    this.set(body, "keys_only", op.keysOnly);
    this.set(body, "count_only", op.countOnly);
    const filters = [
      ["min_mod_revision", op.minMod],
      ["max_mod_revision", op.maxMod],
      ["min_create_revision", op.minCreate],
      ["max_create_revision", op.maxCreate],
    ] as const;
    for (const [field, spec] of filters) if (spec !== undefined) this.set(body, field, this.int(this.revision(spec)));
    return body;
  }

  putBody(op: Extract<TxnChild, { op: "put" }>): Record<string, unknown> {
    const body: Record<string, unknown> = {};
    this.set(body, "key", b64(this.keyBytes(op.key)));
    const value = VALUES[op.value]!;
    if (value !== "") this.set(body, "value", b64(latin1(value)));
    this.set(body, "prev_kv", op.prevKv);
    if (op.lease !== undefined) this.set(body, "lease", this.leaseInt(this.lease(op.lease)));
    this.set(body, "ignore_value", op.ignoreValue);
    this.set(body, "ignore_lease", op.ignoreLease);
    return body;
  }

  deleteBody(op: Extract<TxnChild, { op: "delete" }>): Record<string, unknown> {
    const body: Record<string, unknown> = {};
    this.set(body, "key", b64(this.keyBytes(op.key)));
    const end = this.rangeEnd(op.key, op.end);
    if (end !== undefined) this.set(body, "range_end", b64(end));
    this.set(body, "prev_kv", op.prevKv);
    return body;
  }

  compareBody(spec: CompareSpec): Record<string, unknown> {
    const body: Record<string, unknown> = {
      [this.name("key")]: b64(this.keyBytes(spec.key)),
      result: this.enumOf(COMPARE_RESULTS, spec.result),
      target: this.enumOf(COMPARE_TARGETS, spec.target),
    };
    const end = this.rangeEnd(spec.key, spec.end);
    if (end !== undefined) this.set(body, "range_end", b64(end));
    // With wrongField the operand goes in the next target's field: the compared one is then absent.
    const field = COMPARE_TARGETS[(spec.target + (spec.wrongField === true ? 1 : 0)) % COMPARE_TARGETS.length];
    switch (field) {
      case "VERSION":
        this.set(body, "version", this.int(spec.operand));
        break;
      case "CREATE":
        this.set(body, "create_revision", this.int(spec.operand <= 0 ? spec.operand : this.run.base + spec.operand));
        break;
      case "MOD":
        this.set(body, "mod_revision", this.int(spec.operand <= 0 ? spec.operand : this.run.base + spec.operand));
        break;
      case "VALUE":
        this.set(body, "value", b64(latin1(VALUES[Math.abs(spec.operand) % VALUES.length]!)));
        break;
      default: {
        const lease = spec.operand <= 0 ? "0" : this.lease({ granted: spec.operand - 1 });
        this.set(body, "lease", this.leaseInt(lease));
      }
    }
    return body;
  }

  txnBody(op: Extract<TxnChild, { op: "txn" }>): Record<string, unknown> {
    const child = (c: TxnChild): Record<string, unknown> => {
      switch (c.op) {
        case "range":
          return { [this.name("request_range")]: this.rangeBody(c) };
        case "put":
          return { [this.name("request_put")]: this.putBody(c) };
        case "delete":
          return { [this.name("request_delete_range")]: this.deleteBody(c) };
        case "txn":
          return { [this.name("request_txn")]: this.txnBody(c) };
      }
    };
    const body: Record<string, unknown> = {};
    if (op.compare.length > 0) body.compare = op.compare.map((c) => this.compareBody(c));
    if (op.success.length > 0) body.success = op.success.map(child);
    if (op.failure.length > 0) body.failure = op.failure.map(child);
    return body;
  }

  /** The path and the exact body text of an op. */
  request(op: Op): { path: string; body: string } {
    const json = (path: string, body: unknown) => ({ path, body: JSON.stringify(body) });
    switch (op.op) {
      case "range":
        return json("/v3/kv/range", this.rangeBody(op));
      case "put":
        return json("/v3/kv/put", this.putBody(op));
      case "delete":
        return json("/v3/kv/deleterange", this.deleteBody(op));
      case "txn":
        return json("/v3/kv/txn", this.txnBody(op));
      case "compact":
        return json("/v3/kv/compaction", { revision: this.int(this.revision(op.revision)), physical: op.physical });
      case "grant": {
        const id = op.id === 0 ? 0 : this.run.leaseIdBase + op.id;
        return json("/v3/lease/grant", { TTL: this.int(op.ttl), ID: this.int(id) });
      }
      case "revoke":
        return json("/v3/lease/revoke", { ID: this.lease(op.lease) });
      case "timetolive":
        return json("/v3/lease/timetolive", { ID: this.lease(op.lease), keys: op.keys });
      case "leases":
        return json("/v3/lease/leases", {});
      case "malformed":
        return this.malformed(op.which);
      case "mistype": {
        const inner = this.request(op.inner);
        return { path: inner.path, body: mistypeBody(inner.body, op.pick, op.value) };
      }
    }
  }

  /** Requests etcd refuses (or, for a few, accepts in a surprising way): the same text to both targets. */
  private malformed(which: number): { path: string; body: string } {
    const k = b64(this.keyBytes(1));
    const child = b64(this.keyBytes(3));
    const cases: Array<[string, string]> = [
      ["/v3/kv/range", "{}"],
      ["/v3/kv/range", '{"key":"a"}'],
      ["/v3/kv/range", `{"key":"${k}","limit":"x"}`],
      ["/v3/kv/put", `{"key":null,"value":"dg=="}`],
      ["/v3/kv/put", `{"key":"${k}","lease":true}`],
      ["/v3/kv/deleterange", `{"key":"${k}","range_end":"@@"}`],
      ["/v3/kv/txn", `{"compare":[{"key":"${k}","result":"BAD"}]}`],
      ["/v3/kv/txn", '{"success":[{}]}'],
      ["/v3/kv/txn", '{"compare":[{"target":"VALUE","result":"EQUAL","value":"dg=="}]}'],
      ["/v3/kv/compaction", '{"revision":"abc"}'],
      ["/v3/lease/grant", '{"TTL":"x"}'],
      ["/v3/kv/txn", '{"success":{}}'],
      ["/v3/kv/range", `{"key":"${k}","sort_target":"NOPE"}`],
      [
        "/v3/kv/txn",
        `{"success":[{"request_put":{"key":"${child}"}},{"request_delete_range":{"key":"${k}","range_end":"${b64(prefixEnd(this.keyBytes(1)))}"}}]}`,
      ],
      ["/v3/kv/put", `{"key":"${k}","value":5}`],
      ["/v3/lease/revoke", '{"ID":1.5}'],
    ];
    const [path, body] = cases[which % cases.length]!;
    return { path, body };
  }
}
