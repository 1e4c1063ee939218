// Scenarios of the differential watch test (test/integration/differential-watch.test.ts): writes that make a
// history, one watch stream whose request messages all go out in ONE write followed by the end of the body, then
// live writes. Keys are names relative to the run's own prefix and revisions are relative to the run's first
// revision, so a scenario is plain JSON that replays against any pair of targets.
//
// Why one write: etcd 3.4's gateway (Go net/http, HTTP/1.1) reads away the rest of a request body when it writes
// its first answer, so a message sent after that may never reach etcd; and it writes nothing before the body ends.
// The test also keeps that write within the 512 bytes etcd's JSON decoder reads first, for the same reason.
// Why no cancel of a watcher that starts in the past: etcd moves such a watcher into sync (history, or the
// compaction cancel) on a 100 ms timer, so a cancel sent with its create wins or loses that race at random.
import fc from "fast-check";

/** Keys under the run's prefix; "" is the prefix itself. */
export const KEY_NAMES = ["a", "a/x", "a/y", "b", "b/z", "c"] as const;
export type KeyName = (typeof KEY_NAMES)[number];

export type WriteOp =
  | { op: "put"; key: KeyName; value: string; lease?: true; ignoreValue?: true }
  | { op: "delete"; key: KeyName; prefix?: true }
  /** The ops in this order; keys distinct (etcd refuses a txn that writes one key twice: both must say so). */
  | { op: "txn"; ops: Array<{ key: KeyName; delete?: true }>; value: string }
  | { op: "revoke" }
  | { op: "compact"; at: number };

export type RangeKind =
  | { kind: "single" }
  | { kind: "prefix" }
  | { kind: "from-key" } // range_end "\0": every key >= key
  | { kind: "to"; end: KeyName | "" } // an explicit end ("" = the run prefix: end <= key, refused)
  | { kind: "all" }; // key "" and range_end "\0"

export type StartKind =
  | { kind: "now" }
  | { kind: "rel"; at: number } // base + at: past (history), compacted, or future
  | { kind: "negative" };

export interface CreateMessage {
  type: "create";
  key: KeyName | "";
  range: RangeKind;
  start: StartKind;
  prevKv?: true;
  /** Names, numbers (2 is no filter etcd knows: ignored) or null (the default: NOPUT). */
  filters?: Array<"NOPUT" | "NODELETE" | 0 | 1 | 2 | null>;
  progressNotify?: true;
  fragment?: true;
  watchId?: number;
  /** Send the fields by their lowerCamel names (the gateway accepts both). */
  camel?: true;
}

export type StreamMessage =
  | CreateMessage
  | { type: "cancel"; watchId: number }
  | { type: "progress" }
  | { type: "empty" } // {}: no request in it, ignored
  | { type: "unknown-field" } // a create with an unknown field next to its key
  | { type: "malformed"; text: string };

export interface Scenario {
  history: WriteOp[];
  messages: StreamMessage[];
  live: WriteOp[];
}

/** Malformed request messages (each a whole JSON value where one is needed, or the truncated end of the body). */
export const MALFORMED = [
  '{"create_request":{"key":5}}',
  '{"create_request":{"key":"!!"}}',
  '{"create_request":{"key":"YQ==","filters":["NOPE"]}}',
  '{"create_request":{"key":"YQ==","start_revision":"x"}}',
  '{"cancel_request":{"watch_id":true}}',
  '{"create_request":{"key":"YQ==","filters":"NOPUT"}}',
  "[]",
  '{"create_request":',
] as const;

const keyName = fc.constantFrom(...KEY_NAMES);
const value = fc.constantFrom("1", "22", "v", "");

const writeOp: fc.Arbitrary<WriteOp> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("put" as const), key: keyName, value }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("put" as const), key: keyName, value, lease: fc.constant(true as const) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("put" as const),
      key: keyName,
      value,
      ignoreValue: fc.constant(true as const),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), key: keyName }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("delete" as const), key: keyName, prefix: fc.constant(true as const) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("txn" as const),
      ops: fc.uniqueArray(
        fc.oneof(fc.record({ key: keyName }), fc.record({ key: keyName, delete: fc.constant(true as const) })),
        { minLength: 2, maxLength: 4, selector: (op) => op.key },
      ),
      value,
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: "revoke" as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("compact" as const), at: fc.integer({ min: 0, max: 8 }) }) },
);

const range: fc.Arbitrary<RangeKind> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: "single" as const }) },
  { weight: 3, arbitrary: fc.constant({ kind: "prefix" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "from-key" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("to" as const), end: fc.constantFrom(...KEY_NAMES, "" as const) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "all" as const }) },
);

const start: fc.Arbitrary<StartKind> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: "now" as const }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("rel" as const), at: fc.integer({ min: 1, max: 10 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "negative" as const }) },
);

const create: fc.Arbitrary<CreateMessage> = fc.record(
  {
    type: fc.constant("create" as const),
    key: fc.constantFrom(...KEY_NAMES, "" as const),
    range,
    start,
    prevKv: fc.constant(true as const),
    filters: fc.constantFrom<Array<"NOPUT" | "NODELETE" | 0 | 1 | 2 | null>>(
      ["NOPUT"],
      ["NODELETE"],
      [1],
      [0, "NODELETE"],
      [2],
      [null, 2],
    ),
    progressNotify: fc.constant(true as const),
    fragment: fc.constant(true as const),
    watchId: fc.constantFrom(0, 1, 2, 7, -3),
    camel: fc.constant(true as const),
  },
  { requiredKeys: ["type", "key", "range", "start"] },
);

const streamMessage: fc.Arbitrary<StreamMessage> = fc.oneof(
  { weight: 8, arbitrary: create },
  { weight: 2, arbitrary: fc.record({ type: fc.constant("cancel" as const), watchId: fc.constantFrom(0, 1, 2, 7) }) },
  { weight: 1, arbitrary: fc.constant({ type: "progress" as const }) },
  { weight: 1, arbitrary: fc.constant({ type: "empty" as const }) },
  { weight: 1, arbitrary: fc.constant({ type: "unknown-field" as const }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("malformed" as const), text: fc.constantFrom(...MALFORMED) }) },
);

export const scenarioArbitrary: fc.Arbitrary<Scenario> = fc
  .record({
    history: fc.array(writeOp, { maxLength: 8 }),
    messages: fc.array(streamMessage, { minLength: 1, maxLength: 4 }),
    live: fc.array(writeOp, { minLength: 1, maxLength: 6 }),
  })
  .filter((scenario) => cancelsOnlySyncedWatchers(scenario));

/** True when the create starts at a revision already written (history replay or compaction: etcd's timer). */
export function startsInThePast(message: CreateMessage, historyRevisions: number): boolean {
  if (message.start.kind === "negative") return true;
  return message.start.kind === "rel" && message.start.at <= historyRevisions;
}

/**
 * Follows etcd's id rules through the stream's messages (a malformed message ends the reading, a refused create
 * takes no id, an automatic id is the lowest unused one counting up from the last one given, a cancel frees its
 * id) and refuses a scenario that cancels a watcher starting in the past (see the file comment).
 */
function cancelsOnlySyncedWatchers(scenario: Scenario): boolean {
  const historyRevisions = scenario.history.length; // an upper bound: each write makes at most one revision
  const live = new Map<number, CreateMessage>();
  let next = 0;
  for (const message of scenario.messages) {
    if (message.type === "malformed") return true;
    if (message.type === "cancel") {
      const target = live.get(message.watchId);
      if (target !== undefined && startsInThePast(target, historyRevisions)) return false;
      live.delete(message.watchId);
    }
    if (message.type === "unknown-field") {
      while (live.has(next)) next++;
      live.set(next++, { type: "create", key: "a", range: { kind: "single" }, start: { kind: "now" } });
    }
    if (message.type !== "create" || rangeIsEmpty(message)) continue;
    const requested = message.watchId ?? 0;
    if (requested !== 0) {
      if (!live.has(requested)) live.set(requested, message);
      continue;
    }
    while (live.has(next)) next++;
    live.set(next++, message);
  }
  return true;
}

/** An explicit end at or before the key selects nothing (etcd refuses the watch). */
export function rangeIsEmpty(message: CreateMessage): boolean {
  if (message.range.kind !== "to") return false;
  return message.range.end <= message.key;
}
