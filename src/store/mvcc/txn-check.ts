// Txn guards and static checks: compare evaluation (etcd's applyCompare) and the request checks etcd makes
// before a txn runs (op count, duplicate keys between puts and overlapping deletes, per branch and nested).
import type { Compare, RequestOp, TxnRequest } from "./commands.js";
import { MAX_TXN_OPS } from "./commands.js";
import { DuplicateKeyError, KeyNotProvidedError, TooManyTxnOpsError } from "./errors.js";
import type { KeyRevision, KeySpace } from "./key-space.js";
import { toBinaryKey, toBinaryRangeEnd } from "./ranges.js";

const EMPTY = new Uint8Array(0);

/** True when every key selected by the compare satisfies it (a missing key compares as zeros, but never by VALUE). */
export function evaluateCompare(space: KeySpace, compare: Compare, atRevision: number): boolean {
  const start = toBinaryKey(compare.key);
  const end = toBinaryRangeEnd(compare.key, compare.range_end);
  const kvs: KeyRevision[] = [];
  if (end === undefined) {
    const kv = space.get(start, atRevision);
    if (kv !== undefined) kvs.push(kv);
  } else {
    space.forEachLive(start, end, atRevision, (kv) => {
      kvs.push(kv);
      return true;
    });
  }
  if (kvs.length === 0) {
    if (compare.target === "VALUE") return false;
    return compareOne(compare, undefined);
  }
  return kvs.every((kv) => compareOne(compare, kv));
}

function compareOne(compare: Compare, kv: KeyRevision | undefined): boolean {
  let order: number;
  switch (compare.target) {
    case "VERSION":
      order = Math.sign((kv?.version ?? 0) - (compare.version ?? 0));
      break;
    case "CREATE":
      order = Math.sign((kv?.create ?? 0) - (compare.create_revision ?? 0));
      break;
    case "MOD":
      order = Math.sign((kv?.mod ?? 0) - (compare.mod_revision ?? 0));
      break;
    case "VALUE":
      order = compareBinary(kv?.value ?? "", toBinaryKey(compare.value ?? EMPTY));
      break;
    case "LEASE":
      order = Math.sign((kv?.lease ?? 0) - (compare.lease ?? 0));
      break;
  }
  switch (compare.result) {
    case "EQUAL":
      return order === 0;
    case "GREATER":
      return order > 0;
    case "LESS":
      return order < 0;
    case "NOT_EQUAL":
      return order !== 0;
  }
}

/** etcd's checkTxnRequest + checkIntervals for both branches: throws TooManyTxnOps / DuplicateKey / KeyNotProvided. */
export function checkTxnShape(request: TxnRequest): void {
  const compare = request.compare ?? [];
  const success = request.success ?? [];
  const failure = request.failure ?? [];
  if (compare.length > MAX_TXN_OPS || success.length > MAX_TXN_OPS || failure.length > MAX_TXN_OPS) {
    throw new TooManyTxnOpsError();
  }
  for (const c of compare) if (c.key.length === 0) throw new KeyNotProvidedError();
  checkIntervals(success);
  checkIntervals(failure);
}

/** A deleted interval in binary-string form: end undefined = one key, null = no upper bound. */
interface Interval {
  start: string;
  end: string | null | undefined;
}

function intersects(intervals: readonly Interval[], key: string): boolean {
  for (const iv of intervals) {
    if (iv.end === undefined ? key === iv.start : key >= iv.start && (iv.end === null || key < iv.end)) return true;
  }
  return false;
}

/** Returns this branch's put keys and delete intervals (children included); throws on a duplicate. */
function checkIntervals(ops: readonly RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) {
    if (!("request_delete_range" in op)) continue;
    const del = op.request_delete_range;
    if (del.key.length === 0) throw new KeyNotProvidedError();
    const end = toBinaryRangeEnd(del.key, del.range_end);
    // etcd's duplicate check takes range_end literally: "\0" (which deletes everything from key on) makes the
    // interval [key, "\0"), empty, so it never conflicts with a put, although the delete does remove that key.
    if (end === null) continue;
    dels.push({ start: toBinaryKey(del.key), end });
  }
  const puts = new Set<string>();
  for (const op of ops) {
    if (!("request_txn" in op)) continue;
    checkTxnShape(op.request_txn);
    const then = checkIntervals(op.request_txn.success ?? []);
    const otherwise = checkIntervals(op.request_txn.failure ?? []);
    for (const key of then.puts) {
      if (puts.has(key) || intersects(dels, key)) throw new DuplicateKeyError();
      puts.add(key);
    }
    for (const key of otherwise.puts) {
      // The same key in both branches of one nested txn is fine: only one branch runs.
      if ((puts.has(key) && !then.puts.has(key)) || intersects(dels, key)) throw new DuplicateKeyError();
      puts.add(key);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }
  for (const op of ops) {
    if (!("request_put" in op)) continue;
    if (op.request_put.key.length === 0) throw new KeyNotProvidedError();
    const key = toBinaryKey(op.request_put.key);
    if (puts.has(key) || intersects(dels, key)) throw new DuplicateKeyError();
    puts.add(key);
  }
  return { puts, dels };
}

/** Binary (latin1) strings compare like their bytes. */
function compareBinary(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
