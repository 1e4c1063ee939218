// Binary encoding of store commands for the Raft log. Binary rather than JSON+base64: a put of a 100-byte value
// costs ~110 bytes and no base64 pass, and decoding on every replica is a handful of varint reads.
// Layout: one format byte, one command tag, then the command's fields in a fixed order (see each writer).
import assert from "node:assert";
import { ByteReader, ByteWriter } from "./bytes.js";
import type {
  Command,
  Compare,
  CompareResult,
  CompareTarget,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  SortOrder,
  SortTarget,
  TxnRequest,
} from "./commands.js";
import { CommandDecodeError } from "./errors.js";

const FORMAT_V1 = 0x01;
const COMMAND_TAGS = ["range", "put", "deleteRange", "txn", "compaction", "leaseGrant", "leaseRevoke"] as const;
const SORT_ORDERS: readonly SortOrder[] = ["NONE", "ASCEND", "DESCEND"];
const SORT_TARGETS: readonly SortTarget[] = ["KEY", "VERSION", "CREATE", "MOD", "VALUE"];
const COMPARE_RESULTS: readonly CompareResult[] = ["EQUAL", "GREATER", "LESS", "NOT_EQUAL"];
const COMPARE_TARGETS: readonly CompareTarget[] = ["VERSION", "CREATE", "MOD", "VALUE", "LEASE"];
const EMPTY = new Uint8Array(0);
/** Nested txns deeper than this are refused (etcd bounds them indirectly through the 128-op limit). */
const MAX_TXN_DEPTH = 16;

const OP_RANGE = 1;
const OP_PUT = 2;
const OP_DELETE = 3;
const OP_TXN = 4;

export function encodeCommand(command: Command): Uint8Array {
  const w = new ByteWriter();
  w.byte(FORMAT_V1).byte(COMMAND_TAGS.indexOf(command.type) + 1);
  switch (command.type) {
    case "range":
      writeRange(w, command.request);
      break;
    case "put":
      writePut(w, command.request);
      break;
    case "deleteRange":
      writeDelete(w, command.request);
      break;
    case "txn":
      writeTxn(w, command.request);
      break;
    case "compaction":
      w.int(command.request.revision).bool(command.request.physical ?? false);
      break;
    case "leaseGrant":
      w.int(command.request.TTL).int(command.request.ID ?? 0);
      break;
    case "leaseRevoke":
      w.int(command.request.ID);
      break;
  }
  return w.finish();
}

export function decodeCommand(data: Uint8Array): Command {
  const r = new ByteReader(data, (detail) => new CommandDecodeError(detail));
  const format = r.byte();
  if (format !== FORMAT_V1) throw new CommandDecodeError(`unknown format byte ${format}`);
  const tag = r.byte();
  const type = COMMAND_TAGS[tag - 1];
  let command: Command;
  switch (type) {
    case "range":
      command = { type, request: readRange(r) };
      break;
    case "put":
      command = { type, request: readPut(r) };
      break;
    case "deleteRange":
      command = { type, request: readDelete(r) };
      break;
    case "txn":
      command = { type, request: readTxn(r, 0) };
      break;
    case "compaction":
      command = { type, request: { revision: r.int(), physical: r.bool() } };
      break;
    case "leaseGrant":
      command = { type, request: { TTL: r.int(), ID: r.int() } };
      break;
    case "leaseRevoke":
      command = { type, request: { ID: r.int() } };
      break;
    default:
      throw new CommandDecodeError(`unknown command tag ${tag}`);
  }
  r.expectEnd();
  return command;
}

function copy(bytes: Uint8Array): Uint8Array {
  return bytes.length === 0 ? EMPTY : bytes.slice();
}

function enumByte<T>(values: readonly T[], value: T | undefined, fallback: T): number {
  const index = values.indexOf(value ?? fallback);
  // The gateway validates enums from user input; an unknown one here is a programmer error.
  assert(index >= 0, `invalid enum value ${String(value)}`);
  return index;
}

function enumValue<T>(r: ByteReader, values: readonly T[], what: string): T {
  const index = r.byte();
  const value = values[index];
  if (value === undefined) throw new CommandDecodeError(`invalid ${what} ${index}`);
  return value;
}

function writeRange(w: ByteWriter, q: RangeRequest): void {
  w.bytes(q.key).bytes(q.range_end ?? EMPTY);
  w.int(q.limit ?? 0).int(q.revision ?? 0);
  w.byte(enumByte(SORT_ORDERS, q.sort_order, "NONE")).byte(enumByte(SORT_TARGETS, q.sort_target, "KEY"));
  w.byte((q.serializable ? 1 : 0) | (q.keys_only ? 2 : 0) | (q.count_only ? 4 : 0));
  w.int(q.min_mod_revision ?? 0).int(q.max_mod_revision ?? 0);
  w.int(q.min_create_revision ?? 0).int(q.max_create_revision ?? 0);
}

function readRange(r: ByteReader): RangeRequest {
  const key = copy(r.bytes());
  const range_end = copy(r.bytes());
  const limit = r.int();
  const revision = r.int();
  const sort_order = enumValue(r, SORT_ORDERS, "sort order");
  const sort_target = enumValue(r, SORT_TARGETS, "sort target");
  const flags = r.byte();
  return {
    key,
    range_end,
    limit,
    revision,
    sort_order,
    sort_target,
    serializable: (flags & 1) !== 0,
    keys_only: (flags & 2) !== 0,
    count_only: (flags & 4) !== 0,
    min_mod_revision: r.int(),
    max_mod_revision: r.int(),
    min_create_revision: r.int(),
    max_create_revision: r.int(),
  };
}

function writePut(w: ByteWriter, q: PutRequest): void {
  w.bytes(q.key)
    .bytes(q.value ?? EMPTY)
    .int(q.lease ?? 0);
  w.byte((q.prev_kv ? 1 : 0) | (q.ignore_value ? 2 : 0) | (q.ignore_lease ? 4 : 0));
}

function readPut(r: ByteReader): PutRequest {
  const key = copy(r.bytes());
  const value = copy(r.bytes());
  const lease = r.int();
  const flags = r.byte();
  return {
    key,
    value,
    lease,
    prev_kv: (flags & 1) !== 0,
    ignore_value: (flags & 2) !== 0,
    ignore_lease: (flags & 4) !== 0,
  };
}

function writeDelete(w: ByteWriter, q: DeleteRangeRequest): void {
  w.bytes(q.key)
    .bytes(q.range_end ?? EMPTY)
    .bool(q.prev_kv ?? false);
}

function readDelete(r: ByteReader): DeleteRangeRequest {
  return { key: copy(r.bytes()), range_end: copy(r.bytes()), prev_kv: r.bool() };
}

function writeCompare(w: ByteWriter, c: Compare): void {
  w.byte(enumByte(COMPARE_RESULTS, c.result, "EQUAL")).byte(enumByte(COMPARE_TARGETS, c.target, "VERSION"));
  w.bytes(c.key).bytes(c.range_end ?? EMPTY);
  switch (c.target) {
    case "VERSION":
      w.int(c.version ?? 0);
      break;
    case "CREATE":
      w.int(c.create_revision ?? 0);
      break;
    case "MOD":
      w.int(c.mod_revision ?? 0);
      break;
    case "VALUE":
      w.bytes(c.value ?? EMPTY);
      break;
    case "LEASE":
      w.int(c.lease ?? 0);
      break;
  }
}

function readCompare(r: ByteReader): Compare {
  const result = enumValue(r, COMPARE_RESULTS, "compare result");
  const target = enumValue(r, COMPARE_TARGETS, "compare target");
  const key = copy(r.bytes());
  const range_end = copy(r.bytes());
  const base = { result, target, key, range_end };
  switch (target) {
    case "VERSION":
      return { ...base, version: r.int() };
    case "CREATE":
      return { ...base, create_revision: r.int() };
    case "MOD":
      return { ...base, mod_revision: r.int() };
    case "VALUE":
      return { ...base, value: copy(r.bytes()) };
    case "LEASE":
      return { ...base, lease: r.int() };
  }
}

function writeOp(w: ByteWriter, op: RequestOp): void {
  if ("request_range" in op) writeRange(w.byte(OP_RANGE), op.request_range);
  else if ("request_put" in op) writePut(w.byte(OP_PUT), op.request_put);
  else if ("request_delete_range" in op) writeDelete(w.byte(OP_DELETE), op.request_delete_range);
  else writeTxn(w.byte(OP_TXN), op.request_txn);
}

function readOp(r: ByteReader, depth: number): RequestOp {
  const tag = r.byte();
  switch (tag) {
    case OP_RANGE:
      return { request_range: readRange(r) };
    case OP_PUT:
      return { request_put: readPut(r) };
    case OP_DELETE:
      return { request_delete_range: readDelete(r) };
    case OP_TXN:
      return { request_txn: readTxn(r, depth + 1) };
    default:
      throw new CommandDecodeError(`unknown txn op tag ${tag}`);
  }
}

function writeTxn(w: ByteWriter, q: TxnRequest): void {
  const compare = q.compare ?? [];
  const success = q.success ?? [];
  const failure = q.failure ?? [];
  w.uint(compare.length);
  for (const c of compare) writeCompare(w, c);
  w.uint(success.length);
  for (const op of success) writeOp(w, op);
  w.uint(failure.length);
  for (const op of failure) writeOp(w, op);
}

function readList<T>(r: ByteReader, read: () => T): T[] {
  const count = r.uint();
  // Each element takes at least one byte: a count above the remaining input is corruption, not a huge array.
  if (count > r.remaining) throw new CommandDecodeError(`list of ${count} items overruns input`);
  const items: T[] = [];
  for (let i = 0; i < count; i++) items.push(read());
  return items;
}

function readTxn(r: ByteReader, depth: number): TxnRequest {
  if (depth > MAX_TXN_DEPTH) throw new CommandDecodeError(`txn nested deeper than ${MAX_TXN_DEPTH}`);
  const compare = readList(r, () => readCompare(r));
  const success = readList(r, () => readOp(r, depth));
  const failure = readList(r, () => readOp(r, depth));
  return { compare, success, failure };
}
