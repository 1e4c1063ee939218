// Range reads with etcd 3.4's semantics: revision checks, count/more, limit, keys_only/count_only, the
// min/max revision filters and sorting (limit is applied after sorting, like etcd's applier).
import type { KeyValue, RangeRequest, RangeResponse, ResponseHeader } from "./commands.js";
import { CompactedError, FutureRevisionError, KeyNotProvidedError } from "./errors.js";
import type { KeyRevision, KeySpace } from "./key-space.js";
import { keyValueOf } from "./kv-convert.js";
import { toBinaryKey, toBinaryRangeEnd } from "./ranges.js";

/** Checks a read revision: <= 0 means `current`; compacted or future revisions throw etcd's errors. */
export function resolveReadRevision(space: KeySpace, requested: number | undefined, current: number): number {
  const revision = requested ?? 0;
  if (revision <= 0) return current;
  if (revision > current) throw new FutureRevisionError();
  if (revision < space.compactRevision) throw new CompactedError(space.compactRevision);
  return revision;
}

/**
 * etcd's check of a range inside a txn (checkRequestRange), stricter than a plain range's: any revision but 0
 * below etcd's compaction revision (-1 on a store never compacted) is "compacted", so a negative revision, which a
 * plain range reads as "current", fails in a txn once the store was compacted.
 */
export function checkTxnRange(space: KeySpace, request: RangeRequest, current: number): void {
  if (request.key.length === 0) throw new KeyNotProvidedError();
  const revision = request.revision ?? 0;
  if (revision === 0) return;
  if (revision > current) throw new FutureRevisionError();
  if (revision < space.etcdCompactRevision) throw new CompactedError(space.compactRevision);
}

/**
 * Runs a range read. `current` is the revision that "now" means (inside a txn that already wrote, the pending
 * revision, so the txn sees its own writes); `header` is shared with the enclosing response.
 */
export function runRange(
  space: KeySpace,
  request: RangeRequest,
  current: number,
  header: ResponseHeader,
): RangeResponse {
  if (request.key.length === 0) throw new KeyNotProvidedError();
  const atRevision = resolveReadRevision(space, request.revision, current);
  const start = toBinaryKey(request.key);
  const end = toBinaryRangeEnd(request.key, request.range_end);
  const limit = Math.max(0, request.limit ?? 0);
  const sortOrder = effectiveSortOrder(request);
  const filtered = hasRevisionFilters(request);
  // Without sorting or filters the first `limit` keys in key order are the answer: stop collecting early
  // (still counting, since etcd reports the total count).
  const collectMax = sortOrder === "NONE" && !filtered && limit > 0 ? limit : Number.POSITIVE_INFINITY;
  const found: KeyRevision[] = [];
  let count = 0;
  const visit = (kv: KeyRevision): boolean => {
    // etcd counts every key in the range; the revision filters only prune the returned kvs.
    count++;
    if (request.count_only || (filtered && !passesFilters(request, kv))) return true;
    if (found.length < collectMax) found.push(kv);
    return true;
  };
  if (end === undefined) {
    const kv = space.get(start, atRevision);
    if (kv !== undefined) visit(kv);
  } else {
    space.forEachLive(start, end, atRevision, visit);
  }
  if (request.count_only) return { header, kvs: [], more: false, count };
  if (sortOrder !== "NONE") sortRevisions(found, request.sort_target ?? "KEY", sortOrder);
  // When collection stopped early (no sort, no filter), `count` tells whether more keys exist; otherwise every
  // matching kv was collected and the excess is cut here.
  const matching = collectMax === Number.POSITIVE_INFINITY ? found.length : count;
  const more = limit > 0 && matching > limit;
  if (more && found.length > limit) found.length = limit;
  const keysOnly = request.keys_only ?? false;
  const kvs: KeyValue[] = new Array(found.length);
  for (let i = 0; i < found.length; i++) kvs[i] = keyValueOf(found[i]!, keysOnly);
  return { header, kvs, more, count };
}

/** etcd sorts ascending by default when a non-key target is given; ascending by key is the natural order. */
function effectiveSortOrder(request: RangeRequest): "NONE" | "ASCEND" | "DESCEND" {
  const target = request.sort_target ?? "KEY";
  let order = request.sort_order ?? "NONE";
  if (order === "NONE" && target !== "KEY") order = "ASCEND";
  if (order === "ASCEND" && target === "KEY") return "NONE";
  return order;
}

// etcd applies a filter whenever its field is non-zero: a negative max_* prunes every kv, a negative min_* none.
function hasRevisionFilters(r: RangeRequest): boolean {
  return (
    (r.min_mod_revision ?? 0) !== 0 ||
    (r.max_mod_revision ?? 0) !== 0 ||
    (r.min_create_revision ?? 0) !== 0 ||
    (r.max_create_revision ?? 0) !== 0
  );
}

function passesFilters(r: RangeRequest, kv: KeyRevision): boolean {
  if ((r.min_mod_revision ?? 0) !== 0 && kv.mod < r.min_mod_revision!) return false;
  if ((r.max_mod_revision ?? 0) !== 0 && kv.mod > r.max_mod_revision!) return false;
  if ((r.min_create_revision ?? 0) !== 0 && kv.create < r.min_create_revision!) return false;
  if ((r.max_create_revision ?? 0) !== 0 && kv.create > r.max_create_revision!) return false;
  return true;
}

function sortRevisions(items: KeyRevision[], target: string, order: "ASCEND" | "DESCEND"): void {
  const direction = order === "ASCEND" ? 1 : -1;
  const byKey = (a: KeyRevision, b: KeyRevision): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  let compare: (a: KeyRevision, b: KeyRevision) => number;
  switch (target) {
    case "VERSION":
      compare = (a, b) => a.version - b.version;
      break;
    case "CREATE":
      compare = (a, b) => a.create - b.create;
      break;
    case "MOD":
      compare = (a, b) => a.mod - b.mod;
      break;
    case "VALUE":
      // Binary strings: string order is byte order.
      compare = (a, b) => (a.value! < b.value! ? -1 : a.value! > b.value! ? 1 : 0);
      break;
    default:
      compare = byKey;
  }
  // Stable sort: ties keep key order. etcd uses Go's sort.Sort, which is stable only up to 12 kvs (insertion
  // sort); beyond that its order of ties is an accident of the algorithm, which vigie does not try to copy.
  items.sort((a, b) => direction * compare(a, b));
}
