// The operation model of the KV differential test (test/integration/differential-kv.test.ts): random sequences of
// etcd v3 JSON gateway calls over a small key space, described independently of the target so that ONE sequence
// can be sent to a real etcd and to vigie. Revisions are relative to the run's starting revision and leases are
// named by their order of grant; `toRequest` turns an op into the concrete path and body for one target.
import fc from "fast-check";
import { mistypeArbitrary } from "./differential-mistype.js";

/** Key suffixes under the run's prefix: the prefix itself, nested prefixes, a sibling, a 0xff byte. */
export const KEY_SUFFIXES = ["", "a", "a/", "a/b", "ab", "\xff"] as const;
export const VALUES = ["", "v", "\x00\xff", "w", "vv"] as const;

export type RangeEndSpec =
  | { kind: "none" }
  | { kind: "prefix" }
  | { kind: "all" }
  | { kind: "key"; key: number }
  | { kind: "runEnd" };
/** A revision: relative to the run's start, or sent as is (0 = current, negative). */
export type RevSpec = { rel: number } | { literal: number };
export type LeaseRef = { granted: number } | { bogus: number } | { none: true };

export interface RangeOp {
  op: "range";
  key: number;
  end: RangeEndSpec;
  limit?: number;
  revision?: RevSpec;
  sortOrder?: number;
  sortTarget?: number;
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  minMod?: RevSpec;
  maxMod?: RevSpec;
  minCreate?: RevSpec;
  maxCreate?: RevSpec;
}
export interface PutOp {
  op: "put";
  key: number;
  value: number;
  prevKv?: boolean;
  lease?: LeaseRef;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}
export interface DeleteOp {
  op: "delete";
  key: number;
  end: RangeEndSpec;
  prevKv?: boolean;
}
export interface CompareSpec {
  key: number;
  end: RangeEndSpec;
  result: number;
  target: number;
  /** The compared number (version, revision relative to the run, or lease ref index) or value index. */
  operand: number;
  /** Send the operand in a field other than the target's (etcd then compares against 0 / ""). */
  wrongField?: boolean;
}
export type TxnChild = RangeOp | PutOp | DeleteOp | TxnOp;
export interface TxnOp {
  op: "txn";
  compare: CompareSpec[];
  success: TxnChild[];
  failure: TxnChild[];
}
export interface CompactOp {
  op: "compact";
  revision: RevSpec;
  physical: boolean;
}
export interface GrantOp {
  op: "grant";
  ttl: number;
  /** 0 = let the server choose; otherwise an explicit id (offset by the run's lease base). */
  id: number;
}
export interface RevokeOp {
  op: "revoke";
  lease: LeaseRef;
}
export interface TimeToLiveOp {
  op: "timetolive";
  lease: LeaseRef;
  keys: boolean;
}
export interface LeasesOp {
  op: "leases";
}
/** A valid op's body with one field given a value of another type (differential-mistype.ts). */
export interface MistypeOp {
  op: "mistype";
  inner: Op;
  pick: number;
  value: number;
}
export interface MalformedOp {
  op: "malformed";
  which: number;
}
export type Op =
  | RangeOp
  | PutOp
  | DeleteOp
  | TxnOp
  | CompactOp
  | GrantOp
  | RevokeOp
  | TimeToLiveOp
  | LeasesOp
  | MalformedOp
  | MistypeOp;

const key = fc.integer({ min: 0, max: KEY_SUFFIXES.length - 1 });
const rangeEnd: fc.Arbitrary<RangeEndSpec> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: "none" } as const) },
  { weight: 2, arbitrary: fc.constant({ kind: "prefix" } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: "all" } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: "runEnd" } as const) },
  { weight: 1, arbitrary: key.map((k) => ({ kind: "key", key: k }) as const) },
);
const revSpec: fc.Arbitrary<RevSpec> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -2, max: 8 }).map((rel) => ({ rel })) },
  { weight: 1, arbitrary: fc.constantFrom(0, -1).map((literal) => ({ literal })) },
);
const leaseRef: fc.Arbitrary<LeaseRef> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 1 }).map((granted) => ({ granted })) },
  { weight: 1, arbitrary: fc.constantFrom(424242, -7).map((bogus) => ({ bogus })) },
);

/** A field present once in `oneIn` ops: most requests stay valid, so their answers have something to compare. */
function sometimes<T>(arbitrary: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: oneIn - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arbitrary });
}

/** Drops the absent fields (exactOptionalPropertyTypes: absent is not `undefined`). */
function present<T extends object>(record: { [K in keyof T]: T[K] | undefined }): T {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as T;
}

const rangeOp: fc.Arbitrary<RangeOp> = fc
  .record({
    op: fc.constant("range" as const),
    key,
    end: rangeEnd,
    limit: sometimes(fc.integer({ min: -1, max: 3 }), 3),
    revision: sometimes(revSpec, 4),
    sortOrder: sometimes(fc.integer({ min: 0, max: 2 }), 3),
    sortTarget: sometimes(fc.integer({ min: 0, max: 4 }), 3),
    serializable: sometimes(fc.boolean(), 3),
    keysOnly: sometimes(fc.boolean(), 4),
    countOnly: sometimes(fc.boolean(), 6),
    minMod: sometimes(revSpec, 8),
    maxMod: sometimes(revSpec, 8),
    minCreate: sometimes(revSpec, 8),
    maxCreate: sometimes(revSpec, 8),
  })
  .map((record) => present<RangeOp>(record));
const putOp: fc.Arbitrary<PutOp> = fc
  .record({
    op: fc.constant("put" as const),
    key,
    value: fc.integer({ min: 0, max: VALUES.length - 1 }),
    prevKv: sometimes(fc.boolean(), 2),
    lease: sometimes(leaseRef, 4),
    ignoreValue: sometimes(fc.boolean(), 6),
    ignoreLease: sometimes(fc.boolean(), 6),
  })
  .map((record) => present<PutOp>(record));
const deleteOp: fc.Arbitrary<DeleteOp> = fc
  .record({ op: fc.constant("delete" as const), key, end: rangeEnd, prevKv: sometimes(fc.boolean(), 2) })
  .map((record) => present<DeleteOp>(record));
const compareSpec: fc.Arbitrary<CompareSpec> = fc.record(
  {
    key,
    end: fc.oneof({ weight: 3, arbitrary: fc.constant({ kind: "none" } as const) }, { weight: 1, arbitrary: rangeEnd }),
    result: fc.integer({ min: 0, max: 3 }),
    target: fc.integer({ min: 0, max: 4 }),
    operand: fc.integer({ min: -1, max: 8 }),
    wrongField: fc.constantFrom(false, false, false, true),
  },
  { requiredKeys: ["key", "end", "result", "target", "operand"] },
);
const leafOp: fc.Arbitrary<TxnChild> = fc.oneof(rangeOp, putOp, deleteOp);
const txnOf = (child: fc.Arbitrary<TxnChild>): fc.Arbitrary<TxnOp> =>
  fc.record({
    op: fc.constant("txn" as const),
    compare: fc.array(compareSpec, { maxLength: 3 }),
    success: fc.array(child, { maxLength: 3 }),
    failure: fc.array(child, { maxLength: 3 }),
  });
const txnOp = txnOf(fc.oneof({ weight: 5, arbitrary: leafOp }, { weight: 1, arbitrary: txnOf(leafOp) }));

export const MALFORMED_COUNT = 16;

const validOpArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: putOp },
  { weight: 6, arbitrary: rangeOp },
  { weight: 3, arbitrary: deleteOp },
  { weight: 5, arbitrary: txnOp },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("compact" as const), revision: revSpec, physical: fc.boolean() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("grant" as const),
      ttl: fc.constantFrom(-5, 0, 1, 5, 300, 9_000_000_000, 9_000_000_001),
      id: fc.constantFrom(0, 0, 1, 2),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("revoke" as const), lease: leaseRef }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("timetolive" as const), lease: leaseRef, keys: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ op: "leases" } as const) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: MALFORMED_COUNT - 1 }).map((which) => ({ op: "malformed" as const, which })),
  },
);

export const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: validOpArbitrary },
  {
    weight: 2,
    arbitrary: fc
      .tuple(validOpArbitrary, mistypeArbitrary)
      .map(([inner, { pick, value }]): Op => ({ op: "mistype", inner, pick, value })),
  },
);

export const sequenceArbitrary: fc.Arbitrary<Op[]> = fc.array(opArbitrary, { minLength: 1, maxLength: 14 });
