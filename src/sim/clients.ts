// Simulated clients: each has at most one operation outstanding (put, compare-and-swap or linearizable get),
// sent to a random live member, and records a history for the linearizability checker. A timed-out write stays
// in the history with an unknown outcome; a refused one (ProposalDroppedError) never happened and is dropped.
import assert from "node:assert/strict";
import { ProposalDroppedError } from "../store/raft/index.js";
import { encodeCommand, type KvApplied } from "./kv.js";
import type { HistoryOp, KvOperation } from "./linearizability.js";
import type { SimRandom } from "./random.js";
import type { SimNode } from "./sim-node.js";

interface Outstanding {
  history: HistoryOp;
  seq: number;
  nodeId: number;
  deadline: number;
  context: string;
}

interface Client {
  id: number;
  seq: number;
  outstanding: Outstanding | null;
  idleUntil: number;
}

/** Bound on client ids, so that commandKey is one exact number. */
const MAX_CLIENTS = 1024;

/** A number naming one command (client, seq): applications are looked up by it once per replica, and a number
 * key costs no string building. Exact while seq * MAX_CLIENTS stays below 2^53. */
function commandKey(client: number, seq: number): number {
  return seq * MAX_CLIENTS + client;
}

export interface ClientStats {
  issued: number;
  ok: number;
  refused: number;
  timedOut: number;
  readsOk: number;
}

export class Clients {
  readonly history: HistoryOp[] = [];
  private clients: Client[] = [];
  private clock = 0;
  /** Outstanding writes by commandKey(client, seq), and reads by context. */
  private writes = new Map<number, Outstanding>();
  private reads = new Map<string, Outstanding>();
  /** Recent values per key, so CAS sometimes expects the right one. */
  private recent = new Map<string, string | null>();
  /** The first application of every command anywhere (client:seq → result and logical time), to resolve
   * unknown outcomes. */
  readonly appliedAnywhere = new Map<number, { result: KvApplied; time: number; index: number }>();
  readonly stats: ClientStats = { issued: 0, ok: 0, refused: 0, timedOut: 0, readsOk: 0 };

  constructor(
    count: number,
    private readonly keys: readonly string[],
    private readonly random: SimRandom,
    private readonly timeoutTicks: number,
    private readonly thinkTicks: number,
    /** Back-off after a refusal (no leader yet, limits): about half an election timeout. */
    private readonly refusedBackoffTicks: number,
  ) {
    assert.ok(count < MAX_CLIENTS, `sim: at most ${MAX_CLIENTS - 1} clients, got ${count}`);
    for (let id = 1; id <= count; id++) this.clients.push({ id, seq: 0, outstanding: null, idleUntil: 0 });
  }

  get outstandingCount(): number {
    return this.clients.filter((c) => c.outstanding !== null).length;
  }

  /** Issues new operations for idle clients and times out old ones. */
  tick(now: number, members: () => readonly SimNode[], issueNew: boolean): void {
    let candidates: readonly SimNode[] | null = null;
    for (const client of this.clients) {
      const out = client.outstanding;
      if (out !== null && now >= out.deadline) this.giveUp(client, out);
      if (!issueNew || client.outstanding !== null || now < client.idleUntil) continue;
      candidates ??= members();
      if (candidates.length === 0) continue;
      this.issue(client, now, this.random.pick(candidates));
    }
  }

  private issue(client: Client, now: number, node: SimNode): void {
    const raft = node.raft;
    if (raft === null) return;
    // Like a client library that follows leader hints, mostly wait while the node knows no leader; sometimes
    // try anyway so the refusal path (ProposalDroppedError) stays exercised.
    if (raft.leader === 0 && !this.random.chance(0.1)) {
      client.idleUntil = now + 1 + this.random.int(this.refusedBackoffTicks);
      return;
    }
    client.seq++;
    const key = this.random.pick(this.keys);
    const r = this.random.next();
    const value = `c${client.id}s${client.seq}`;
    let op: KvOperation;
    if (r < 0.4) op = { kind: "put", key, value };
    else if (r < 0.65) {
      const expected = this.random.chance(0.7) ? (this.recent.get(key) ?? null) : `c${client.id}s${client.seq - 1}`;
      op = { kind: "cas", key, expected, value };
    } else op = { kind: "get", key };
    const history: HistoryOp = {
      id: this.history.length,
      client: client.id,
      op,
      callTime: this.clock++,
      returnTime: null,
      outcome: undefined,
    };
    const context = `r${client.id}:${client.seq}`;
    const out: Outstanding = { history, seq: client.seq, nodeId: node.id, deadline: now + this.timeoutTicks, context };
    try {
      if (op.kind === "get") {
        node.readKeys.set(context, key);
        raft.readIndex(context);
      } else {
        const cmd =
          op.kind === "put"
            ? { client: client.id, seq: client.seq, op: "put" as const, key, value }
            : { client: client.id, seq: client.seq, op: "cas" as const, key, expected: op.expected, value };
        raft.propose(encodeCommand(cmd));
      }
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      node.readKeys.delete(context);
      this.stats.refused++;
      client.idleUntil = now + 1 + this.random.int(this.refusedBackoffTicks);
      return;
    }
    this.stats.issued++;
    this.history.push(history);
    client.outstanding = out;
    if (op.kind === "get") this.reads.set(context, out);
    else this.writes.set(commandKey(client.id, client.seq), out);
    node.drain();
  }

  private finish(client: Client, now: number): void {
    client.outstanding = null;
    client.idleUntil = now + this.random.int(this.thinkTicks + 1);
  }

  private giveUp(client: Client, out: Outstanding): void {
    this.stats.timedOut++;
    this.writes.delete(commandKey(client.id, out.seq));
    if (this.reads.delete(out.context)) {
      // A read that never returned had no effect: it is not part of the history.
      out.history.op = { kind: "get", key: "__dropped__" };
    }
    client.outstanding = null;
    client.idleUntil = 0;
  }

  /** A node applied a command; if the client is waiting on that node, it gets its answer. */
  commandApplied(nodeId: number, now: number, index: number, result: KvApplied): void {
    const key = commandKey(result.client, result.seq);
    if (!result.duplicate && !this.appliedAnywhere.has(key)) {
      this.appliedAnywhere.set(key, { result, time: this.clock++, index });
    }
    const out = this.writes.get(key);
    if (out === undefined || out.nodeId !== nodeId) return;
    this.writes.delete(key);
    out.history.returnTime = this.clock++;
    out.history.outcome = result.result;
    const op = out.history.op;
    if (result.result === "ok" && op.kind !== "get") this.recent.set(op.key, op.value);
    this.stats.ok++;
    this.finish(this.clients[result.client - 1]!, now);
  }

  readServed(nodeId: number, now: number, context: string, value: string | null, appliedIndex: number): void {
    const out = this.reads.get(context);
    if (out === undefined || out.nodeId !== nodeId) return;
    this.reads.delete(context);
    out.history.returnTime = this.clock++;
    out.history.outcome = { read: value };
    // Witness hint: the read observed the state after log index appliedIndex.
    out.history.position = appliedIndex + 0.5;
    this.recent.set(out.history.op.key, value);
    this.stats.ok++;
    this.stats.readsOk++;
    this.finish(this.clients[out.history.client - 1]!, now);
  }

  /** The node crashed: its clients will never hear back (writes stay unknown, reads vanish at timeout). */
  nodeCrashed(nodeId: number): void {
    for (const client of this.clients) {
      const out = client.outstanding;
      if (out !== null && out.nodeId === nodeId) out.deadline = 0;
    }
  }

  /** Writes whose client got an answer, with the log index where they were first applied. */
  acknowledgedWrites(): { client: number; seq: number; index: number }[] {
    const out: { client: number; seq: number; index: number }[] = [];
    for (const h of this.history) {
      if (h.op.kind === "get" || h.returnTime === null) continue;
      const seq = seqOf(h);
      const applied = this.appliedAnywhere.get(commandKey(h.client, seq));
      if (applied !== undefined) out.push({ client: h.client, seq, index: applied.index });
    }
    return out;
  }

  /**
   * The history to check: dropped reads removed; an unknown write that no replica ever applied did not happen
   * (by the end of the run) and is removed; an unknown write that was applied gets its true result and, as its
   * return time, the moment it was first applied anywhere. That only tightens the check: a write is committed
   * before any replica applies it, and from then on every linearizable read must see it, so its linearization
   * point lies before its first application. (Without it, unknown writes stay concurrent with everything after
   * them and the search grows exponentially.)
   */
  finalHistory(): HistoryOp[] {
    const out: HistoryOp[] = [];
    for (const h of this.history) {
      if (h.op.key === "__dropped__") continue;
      if (h.returnTime === null) {
        if (h.op.kind === "get") continue;
        const applied = this.appliedAnywhere.get(commandKey(h.client, seqOf(h)));
        if (applied === undefined) continue;
        out.push({ ...h, outcome: applied.result.result, returnTime: applied.time, position: applied.index });
        continue;
      }
      if (h.op.kind !== "get") {
        const applied = this.appliedAnywhere.get(commandKey(h.client, seqOf(h)));
        if (applied !== undefined) h.position = applied.index;
      }
      out.push(h);
    }
    return out;
  }
}

function seqOf(h: HistoryOp): number {
  const op = h.op;
  if (op.kind === "get") return -1;
  return Number(op.value.slice(op.value.indexOf("s") + 1));
}
