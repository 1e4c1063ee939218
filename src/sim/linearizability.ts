// A Wing–Gong–Lowe (WGL) linearizability checker with memoisation, for histories of a KV register per key.
// Linearizability is local (Herlihy & Wing), so each key's sub-history is checked on its own, which keeps the
// search small. An operation whose outcome the client never learned has no return event: it may take effect
// at any point after its call, or (if no replica ever applied it) never — the caller drops it in that case.

import { createPrng } from "../store/raft/index.js";

export type KvOperation =
  | { kind: "put"; key: string; value: string }
  | { kind: "cas"; key: string; expected: string | null; value: string }
  | { kind: "get"; key: string };

/** "ok"/"failed" for writes, the value read (or null) for gets; undefined when the outcome is unknown. */
export type KvOutcome = "ok" | "failed" | { read: string | null };

export interface HistoryOp {
  id: number;
  client: number;
  op: KvOperation;
  /** Logical times from one counter shared by calls and returns. */
  callTime: number;
  /** Null: the client never learned the outcome (timeout, crash of the node it talked to). */
  returnTime: number | null;
  outcome: KvOutcome | undefined;
  /**
   * Optional witness hint: where the implementation says the operation took effect (a write's log index; a
   * read's applied index + 0.5). Hints only choose an order to try first; correctness never depends on them.
   */
  position?: number;
}

export interface CheckResult {
  ok: boolean;
  /** The key whose history could not be linearized. */
  key?: string;
  /** Search states visited, summed over keys (a cost indicator). */
  states: number;
}

interface Event {
  op: HistoryOp;
  index: number;
  isCall: boolean;
  time: number;
  match: Event | null;
  prev: Event | null;
  next: Event | null;
}

/** Applies op to the register value; returns the new value, or undefined if op cannot happen in this state. */
function stepModel(value: string | null, h: HistoryOp): string | null | undefined {
  const { op, outcome } = h;
  switch (op.kind) {
    case "put":
      return op.value;
    case "cas": {
      const succeeds = value === op.expected;
      if (outcome === "ok") return succeeds ? op.value : undefined;
      if (outcome === "failed") return succeeds ? undefined : value;
      return succeeds ? op.value : value;
    }
    case "get":
      if (outcome === undefined || typeof outcome !== "object") return value;
      return outcome.read === value ? value : undefined;
  }
}

function checkKey(ops: HistoryOp[], maxStates: number): { ok: boolean; states: number; exhausted: boolean } {
  const events: Event[] = [];
  ops.forEach((op, index) => {
    const call: Event = { op, index, isCall: true, time: op.callTime, match: null, prev: null, next: null };
    events.push(call);
    if (op.returnTime !== null) {
      const ret: Event = { op, index, isCall: false, time: op.returnTime, match: call, prev: null, next: null };
      call.match = ret;
      events.push(ret);
    }
  });
  events.sort((a, b) => a.time - b.time);
  const head: Event = { op: ops[0]!, index: -1, isCall: false, time: -1, match: null, prev: null, next: null };
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  let returnsLeft = ops.filter((o) => o.returnTime !== null).length;
  const linearized = new Uint8Array(ops.length);
  // Zobrist hashing: the set of linearized operations as two XOR-ed 32-bit lanes, updated in O(1). A collision
  // could only make the search skip a state, i.e. report a false violation — never hide a real one.
  const random = createPrng(ops.length);
  const zobristA = Int32Array.from(ops, () => (random() * 0x100000000) | 0);
  const zobristB = Int32Array.from(ops, () => (random() * 0x100000000) | 0);
  let hashA = 0;
  let hashB = 0;
  const seen = new Set<string>();
  const stack: { call: Event; value: string | null }[] = [];
  let value: string | null = null;
  let entry = head.next;
  let states = 0;

  const lift = (e: Event) => {
    e.prev!.next = e.next;
    if (e.next) e.next.prev = e.prev;
    const m = e.match;
    if (m) {
      m.prev!.next = m.next;
      if (m.next) m.next.prev = m.prev;
    }
  };
  const unlift = (e: Event) => {
    const m = e.match;
    if (m) {
      m.prev!.next = m;
      if (m.next) m.next.prev = m;
    }
    e.prev!.next = e;
    if (e.next) e.next.prev = e;
  };

  while (returnsLeft > 0) {
    if (states++ > maxStates) return { ok: true, states, exhausted: true };
    if (entry?.isCall) {
      const next = stepModel(value, entry.op);
      if (next !== undefined) {
        const nextA = hashA ^ zobristA[entry.index]!;
        const nextB = hashB ^ zobristB[entry.index]!;
        const key = `${nextA}:${nextB}|${next}`;
        if (!seen.has(key)) {
          seen.add(key);
          linearized[entry.index] = 1;
          hashA = nextA;
          hashB = nextB;
          stack.push({ call: entry, value });
          value = next;
          if (entry.match) returnsLeft--;
          lift(entry);
          entry = head.next;
          continue;
        }
      }
      entry = entry.next;
      continue;
    }
    // A return event (or the end of the list) reached with its operation not linearized: backtrack.
    const top = stack.pop();
    if (top === undefined) return { ok: false, states, exhausted: false };
    unlift(top.call);
    linearized[top.call.index] = 0;
    hashA ^= zobristA[top.call.index]!;
    hashB ^= zobristB[top.call.index]!;
    if (top.call.match) returnsLeft++;
    value = top.value;
    entry = top.call.next;
  }
  return { ok: true, states, exhausted: false };
}

/**
 * Fast path: the order given by the position hints (ties by call time). Returns true only if that total order is
 * a legal sequential history of the register AND respects real-time order (no operation placed before one that
 * returned before it was called) — i.e. it is a linearization, so the history is linearizable.
 */
function witnessHolds(ops: readonly HistoryOp[]): boolean {
  if (ops.some((o) => o.position === undefined)) return false;
  const order = [...ops].sort((a, b) => a.position! - b.position! || a.callTime - b.callTime);
  let value: string | null = null;
  let maxCallSoFar = -1;
  for (const op of order) {
    const next = stepModel(value, op);
    if (next === undefined) return false;
    value = next;
    // Some earlier-placed operation was called after this one returned: real-time order broken.
    if (op.returnTime !== null && op.returnTime < maxCallSoFar) return false;
    if (op.callTime > maxCallSoFar) maxCallSoFar = op.callTime;
  }
  return true;
}

/**
 * Checks a history of KV operations. `maxStatesPerKey` bounds the search; an exhausted search is reported as
 * a failure too (never silently passed), with `exhausted` in the result's key name.
 */
export function checkLinearizable(history: readonly HistoryOp[], maxStatesPerKey = 2_000_000): CheckResult {
  const byKey = new Map<string, HistoryOp[]>();
  for (const h of history) {
    const list = byKey.get(h.op.key);
    if (list) list.push(h);
    else byKey.set(h.op.key, [h]);
  }
  let states = 0;
  for (const [key, ops] of [...byKey].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (witnessHolds(ops)) continue;
    const result = checkKey(ops, maxStatesPerKey);
    states += result.states;
    if (result.exhausted) return { ok: false, key: `${key} (search exhausted after ${result.states} states)`, states };
    if (!result.ok) return { ok: false, key, states };
  }
  return { ok: true, states };
}
