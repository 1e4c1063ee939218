// One deterministic simulation run: a cluster of SimNodes over a SimNetwork in simulated ticks, with faults from
// the seed's profile, clients recording a history, invariants checked continuously, then a healing phase that
// must reach a stable leader and finish client operations within a bound, and a final linearizability check.
import {
  type Entry,
  type Message,
  type NodeId,
  type RaftCounters,
  type RaftNode,
  zeroCounters,
} from "../store/raft/index.js";
import { Clients } from "./clients.js";
import { FaultInjector } from "./fault-injector.js";
import { drawProfile, type FaultProfile } from "./faults.js";
import { Invariants, SafetyViolation } from "./invariants.js";
import { decodeCommand } from "./kv.js";
import { checkLinearizable, type HistoryOp } from "./linearizability.js";
import { SimNetwork } from "./network.js";
import { SimRandom } from "./random.js";
import { type NodeObserver, SimNode } from "./sim-node.js";
import { RunTrace } from "./trace.js";

export interface SimOptions {
  seed: number;
  /** Simulated ticks with faults, before the healing phase. */
  steps: number;
  /** Called with human-readable events (leader changes, faults) when set. */
  trace?: (line: string) => void;
  /** Return the checked history in the result (for debugging a linearizability failure). */
  keepHistory?: boolean;
}

export interface SimStats {
  ticks: number;
  nodeTicks: number;
  elections: number;
  preVotes: number;
  preVoteRejections: number;
  leadersElected: number;
  snapshotsSent: number;
  snapshotsInstalled: number;
  membershipChanges: number;
  transfers: number;
  readsServed: number;
  crashes: number;
  partitions: number;
  pauses: number;
  messages: number;
  messagesLost: number;
  opsOk: number;
  opsUnknown: number;
  opsRefused: number;
  historyOps: number;
  checkerStates: number;
  healTicks: number;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  failure: string | null;
  profile: FaultProfile;
  stats: SimStats;
  /** Hash of everything that happened: equal hashes = the same run. */
  traceHash: string;
  history?: HistoryOp[];
}

const MAX_INBOX_MESSAGES = 10_000;
const LOG_CHECK_EVERY_TICKS = 128;
const FULL_LOG_CHECK_EVERY = 8;
const RECENT_WINDOW_ENTRIES = 256;

export function runSimulation(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

export class Simulation implements NodeObserver {
  private readonly root: SimRandom;
  readonly faultRandom: SimRandom;
  readonly profile: FaultProfile;
  readonly network: SimNetwork;
  readonly clients: Clients;
  private readonly invariants = new Invariants();
  private readonly trace = new RunTrace();
  nodes = new Map<NodeId, SimNode>();
  restartAt = new Map<NodeId, number>();
  private removedIds = new Set<NodeId>();
  /** Removed nodes and the tick from which they may be shut down. */
  private toShutDown = new Map<NodeId, number>();
  private readonly membersFn = () => this.members();
  private readonly faults: FaultInjector;
  private snapshotReports: { from: NodeId; to: NodeId; ok: boolean }[] = [];
  partitionHealAt = -1;
  nextId: NodeId;
  now = 0;
  private healing = false;
  private logChecks = 0;
  private totals: RaftCounters = zeroCounters();
  readonly stats: SimStats = {
    ticks: 0,
    nodeTicks: 0,
    elections: 0,
    preVotes: 0,
    preVoteRejections: 0,
    leadersElected: 0,
    snapshotsSent: 0,
    snapshotsInstalled: 0,
    membershipChanges: 0,
    transfers: 0,
    readsServed: 0,
    crashes: 0,
    partitions: 0,
    pauses: 0,
    messages: 0,
    messagesLost: 0,
    opsOk: 0,
    opsUnknown: 0,
    opsRefused: 0,
    historyOps: 0,
    checkerStates: 0,
    healTicks: 0,
  };

  constructor(private readonly options: SimOptions) {
    this.root = new SimRandom(options.seed);
    this.profile = drawProfile(this.root.fork(1));
    this.faultRandom = this.root.fork(2);
    const p = this.profile;
    this.network = new SimNetwork(
      this.root.fork(3),
      {
        lossRate: p.lossRate,
        duplicateRate: p.duplicateRate,
        minDelayTicks: p.minDelayTicks,
        maxDelayTicks: p.maxDelayTicks,
      },
      // The snapshot sender's transport learns that the transfer failed.
      (m) => this.reportSnapshotSent(m, false),
    );
    const keys = Array.from({ length: p.keys }, (_, i) => `k${i}`);
    this.clients = new Clients(
      p.clients,
      keys,
      this.root.fork(4),
      10 * p.electionTick,
      p.clientThinkTicks,
      p.electionTick,
    );
    const voters = Array.from({ length: p.voters }, (_, i) => i + 1);
    const learners = Array.from({ length: p.learners }, (_, i) => p.voters + i + 1);
    this.nextId = p.voters + p.learners + 1;
    this.faults = new FaultInjector(this);
    for (const id of [...voters, ...learners]) this.spawn(id, voters, learners);
  }

  log(line: string): void {
    this.options.trace?.(`[t=${this.now}] ${line}`);
  }

  spawn(id: NodeId, voters: NodeId[], learners: NodeId[]): SimNode {
    const p = this.profile;
    const seedBase = this.root.fork(100 + id);
    const node = new SimNode(
      id,
      {
        voters,
        learners,
        electionTick: p.electionTick,
        heartbeatTick: p.heartbeatTick,
        preVote: p.preVote,
        checkQuorum: p.checkQuorum,
        maxSizePerMsgBytes: p.maxSizePerMsgBytes,
        maxInflightMsgs: p.maxInflightMsgs,
        maxInflightBytes: p.maxInflightBytes,
        maxUncommittedEntriesBytes: p.maxUncommittedEntriesBytes,
      },
      (incarnation) => seedBase.fork(incarnation).next,
      { everyEntries: p.snapshotEveryEntries, keepTail: p.snapshotKeepTail },
      this,
    );
    this.nodes.set(id, node);
    node.start();
    node.drain();
    return node;
  }

  // ---- NodeObserver ----

  send(m: Message): void {
    this.stats.messages++;
    this.network.send(m, this.now);
  }

  applied(node: NodeId, entry: Entry): void {
    this.invariants.applied(node, entry);
    this.trace.mix(entry.index, entry.term, entry.data.length, node);
  }

  restored(node: NodeId, index: number, term: number): void {
    this.invariants.restored(node, index, term);
    this.log(`node ${node} installed snapshot at ${index} (term ${term})`);
  }

  commandApplied(node: NodeId, index: number, result: Parameters<Clients["commandApplied"]>[3]): void {
    this.clients.commandApplied(node, this.now, index, result);
  }

  readServed(node: NodeId, context: string, value: string | null, appliedIndex: number): void {
    this.clients.readServed(node, this.now, context, value, appliedIndex);
  }

  becameLeader(node: NodeId, term: number): void {
    this.invariants.leader(node, term);
    const raft = this.nodes.get(node)?.raft;
    if (raft) this.invariants.leaderComplete(raft);
    this.log(`node ${node} leads term ${term}`);
  }

  leaderCommit(term: number, committed: number): void {
    this.invariants.leaderCommit(term, committed);
  }

  removed(node: NodeId): void {
    if (!this.removedIds.has(node)) {
      this.removedIds.add(node);
      // Like a real driver, a removed member lingers a little: it may still have to hand over leadership.
      // The operator shuts it down once no running member still counts it as a voter: until then the
      // survivors may need its vote (they learn that its removal is committed only from a leader, and a
      // 2 → 1 change needs both). Before that it keeps running, as a lingering process would.
      this.toShutDown.set(node, this.now + 3 * this.profile.electionTick);
    }
  }

  crashed(node: NodeId, raft: RaftNode): void {
    this.addCounters(raft);
    // A snapshot still waiting in the dead process's socket buffer was not delivered: the sender's POST fails.
    for (const m of this.nodes.get(node)?.inbox ?? []) this.reportSnapshotSent(m, false);
  }

  /**
   * Every snapshot transfer ends with an outcome for its sender, as the real transport's POST always does: answered,
   * refused, reset or timed out. (The core keeps a peer in "snapshot" state, sending it nothing else, until then.)
   */
  private reportSnapshotSent(m: Message, ok: boolean): void {
    if (m.type === "snap") this.snapshotReports.push({ from: m.from, to: m.to, ok });
  }

  private addCounters(raft: RaftNode): void {
    const c = raft.counters;
    for (const key of Object.keys(this.totals) as (keyof RaftCounters)[]) this.totals[key] += c[key];
  }

  // ---- the run ----

  run(): SimResult {
    let failure: string | null = null;
    try {
      for (; this.now < this.options.steps; this.now++) this.tick();
      this.heal();
      failure = this.converge();
      if (failure === null) failure = this.finalChecks();
    } catch (error) {
      const where = `at tick ${this.now}`;
      if (error instanceof SafetyViolation) failure = `safety violation ${where}: ${error.message}`;
      else failure = `crash ${where}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    }
    for (const node of this.nodes.values()) if (node.raft) this.addCounters(node.raft);
    return {
      seed: this.options.seed,
      ok: failure === null,
      failure,
      profile: this.profile,
      stats: this.finishStats(),
      traceHash: this.trace.hex(),
      ...(this.options.keepHistory ? { history: this.clients.finalHistory() } : {}),
    };
  }

  private tick(issueNew = true): void {
    if (!this.healing) this.faults.inject();
    if (this.restartAt.size > 0) this.restartDue();
    this.deliverDue();
    for (const node of this.nodes.values()) {
      if (node.raft === null) continue;
      if (node.pausedUntil > this.now) continue;
      if (node.pausedUntil >= 0) this.resume(node);
      if (node.raft === null) continue; // it crashed while catching up on its inbox
      node.raft.tick();
      this.stats.nodeTicks++;
      node.drain();
    }
    this.clients.tick(this.now, this.membersFn, issueNew);
    this.flushSnapshotReports();
    if (this.toShutDown.size > 0) this.shutDownRemoved();
    if (this.now % LOG_CHECK_EVERY_TICKS === 0) this.checkLogs();
    this.stats.ticks++;
    this.trace.mix(this.now, this.network.sent, 0, 0);
  }

  private restartDue(): void {
    for (const [id, at] of this.restartAt) {
      if (at <= this.now) {
        this.restartAt.delete(id);
        const node = this.nodes.get(id)!;
        // A crash scheduled for the middle of a Ready that never came happens now.
        if (node.raft !== null) node.crash();
        node.crashAtNextReady = false;
        node.start();
        node.drain();
        this.log(`node ${id} restarts`);
      }
    }
  }

  private deliverDue(): void {
    for (const m of this.network.takeDue(this.now)) {
      const target = this.nodes.get(m.to);
      if (target === undefined || target.raft === null) {
        this.reportSnapshotSent(m, false);
        continue;
      }
      if (target.pausedUntil > this.now) {
        // A paused process answers once it resumes (see resume); a full socket buffer refuses the transfer.
        if (target.inbox.length < MAX_INBOX_MESSAGES) target.inbox.push(m);
        else this.reportSnapshotSent(m, false);
        continue;
      }
      this.trace.mix(m.term, m.index, m.from * 64 + m.to, m.entries.length);
      target.raft.step(m);
      target.drain();
      this.reportSnapshotSent(m, true);
    }
  }

  private resume(node: SimNode): void {
    node.pausedUntil = -1;
    const inbox = node.inbox;
    node.inbox = [];
    this.log(`node ${node.id} resumes with ${inbox.length} buffered messages`);
    for (const [i, m] of inbox.entries()) {
      if (node.raft === null) {
        // It crashed while catching up: what it had not read yet was never delivered.
        for (const lost of inbox.slice(i)) this.reportSnapshotSent(lost, false);
        return;
      }
      node.raft.step(m);
      node.drain();
      this.reportSnapshotSent(m, true);
    }
  }

  private flushSnapshotReports(): void {
    if (this.snapshotReports.length === 0) return;
    const reports = this.snapshotReports;
    this.snapshotReports = [];
    for (const r of reports) {
      const sender = this.nodes.get(r.from);
      // A sender that crashed forgot the transfer; a paused one hears the outcome once it runs again.
      if (sender?.raft == null) continue;
      if (sender.pausedUntil > this.now) {
        this.snapshotReports.push(r);
        continue;
      }
      sender.raft.reportSnapshot(r.to, r.ok);
      sender.drain();
    }
  }

  private shutDownRemoved(): void {
    for (const [id, notBefore] of this.toShutDown) {
      const node = this.nodes.get(id);
      const raft = node?.raft ?? null;
      // A crashed removed node restarts first: its vote may still be needed.
      if (node !== undefined && raft === null) continue;
      if (raft !== null && (this.now < notBefore || raft.role === "leader" || this.stillCountedAsVoter(id))) continue;
      this.toShutDown.delete(id);
      if (node === undefined) continue;
      if (node.raft) this.addCounters(node.raft);
      this.nodes.delete(id);
      this.restartAt.delete(id);
      this.clients.nodeCrashed(id);
      this.log(`node ${id} removed from the cluster and shut down`);
    }
  }

  /** Whether some remaining member may still need `id`'s vote: it lists `id` as a voter, or it is down (after
   * a restart it may have lost its commit index and not know that the removal is committed). */
  private stillCountedAsVoter(id: NodeId): boolean {
    for (const node of this.nodes.values()) {
      if (node.id === id || this.removedIds.has(node.id)) continue;
      if (node.raft === null || node.raft.voters.has(id)) return true;
    }
    return false;
  }

  /** Running, unpaused nodes that consider themselves members and were not removed. */
  private members(): SimNode[] {
    const out: SimNode[] = [];
    for (const node of this.nodes.values()) {
      if (node.raft === null || node.pausedUntil > this.now || this.removedIds.has(node.id)) continue;
      const cs = node.raft;
      if (cs.voters.has(node.id) || cs.learners.has(node.id)) out.push(node);
    }
    return out;
  }

  leaderNode(): SimNode | null {
    let best: SimNode | null = null;
    for (const node of this.nodes.values()) {
      const raft = node.raft;
      if (raft === null || raft.role !== "leader" || node.pausedUntil > this.now) continue;
      if (best === null || raft.term > best.raft!.term) best = node;
    }
    return best;
  }

  /**
   * Periodic whole-log checks. Every FULL_LOG_CHECK_EVERY-th time the whole stored logs are compared; in between
   * only the recent window (where logs still change), which keeps long unsnapshotted logs cheap to watch.
   * (Every applied entry is also checked against the oracle as it is applied.)
   */
  private checkLogs(full = false): void {
    this.logChecks++;
    const whole = full || this.logChecks % FULL_LOG_CHECK_EVERY === 0;
    const running: RaftNode[] = [];
    for (const node of this.nodes.values()) if (node.raft) running.push(node.raft);
    for (const raft of running) {
      this.invariants.committedPrefix(raft, whole ? 1 : raft.log.committed - RECENT_WINDOW_ENTRIES);
    }
    for (let i = 0; i < running.length; i++) {
      for (let j = i + 1; j < running.length; j++) {
        const a = running[i]!;
        const b = running[j]!;
        const from = whole ? 1 : Math.min(a.log.committed, b.log.committed) - RECENT_WINDOW_ENTRIES;
        Invariants.logMatching(a, b, from);
      }
    }
  }

  /** Faults stop: the network becomes reliable, partitions heal, crashed nodes restart, paused ones resume. */
  private heal(): void {
    this.healing = true;
    this.network.healthy = true;
    this.network.healPartitions();
    this.partitionHealAt = -1;
    for (const id of this.restartAt.keys()) this.restartAt.set(id, this.now);
    for (const node of this.nodes.values()) if (node.pausedUntil > this.now) node.pausedUntil = this.now;
    this.log("faults healed");
  }

  /** After healing: a leader must emerge, client operations must finish and replicas converge within a bound. */
  private converge(): string | null {
    // Elections take a few election timeouts; a replica far behind may also need one round trip per in-flight
    // window of entries (with maxInflightMsgs = 1 and one entry per message, that is one RTT per entry).
    const p = this.profile;
    let longestLog = 0;
    // A node that is down at this moment (healing restarts it on the next tick) counts with the log on its disk:
    // read as 0, a seed whose nodes had all crashed got the bound of an empty log and failed while catching up.
    for (const node of this.nodes.values()) {
      longestLog = Math.max(longestLog, node.raft?.log.lastIndex() ?? node.disk.live.lastIndex());
    }
    const catchUpTicks = Math.ceil(longestLog / p.maxInflightMsgs) * (2 * p.maxDelayTicks + 1);
    const bound = 100 * p.electionTick + 400 + catchUpTicks;
    const start = this.now;
    const okBefore = this.clients.stats.ok;
    // Every client must complete operations issued after healing; then new ones stop and the rest drain.
    const wanted = 2 * this.profile.clients;
    for (; this.now < start + bound; this.now++) {
      this.tick(this.clients.stats.ok - okBefore < wanted);
      if (this.clients.stats.ok - okBefore >= wanted && this.clients.outstandingCount === 0 && this.converged()) {
        this.stats.healTicks = this.now - start;
        return null;
      }
    }
    const leader = this.leaderNode();
    return (
      `liveness: not converged ${bound} ticks after healing (leader ${leader?.id ?? "none"}, ` +
      `ops completed since heal ${this.clients.stats.ok - okBefore}, outstanding ${this.clients.outstandingCount})\n` +
      `  ${this.describeNodes()}`
    );
  }

  /** One line per node for failure reports: role, term, leader, indexes, and the leader's view of it. */
  private describeNodes(): string {
    const leader = this.leaderNode();
    const lines: string[] = [];
    for (const node of this.nodes.values()) {
      const r = node.raft;
      if (r === null) {
        lines.push(`node ${node.id}: down`);
        continue;
      }
      const pr = leader?.raft?.status().progress.get(node.id);
      const progress = pr ? ` progress=${pr.state}/match ${pr.match}/next ${pr.next}/active ${pr.recentActive}` : "";
      lines.push(
        `node ${node.id}: ${r.role} term ${r.term} leader ${r.leader} voters [${[...r.voters]}] learners ` +
          `[${[...r.learners]}] applied ${node.appliedIndex} commit ${r.log.committed} last ${r.log.lastIndex()} ` +
          `first ${r.log.firstIndex()}${progress}`,
      );
    }
    return lines.join("\n  ");
  }

  private converged(): boolean {
    const leader = this.leaderNode();
    if (leader === null) return false;
    const lr = leader.raft!;
    if (lr.log.committed !== lr.log.lastIndex()) return false;
    for (const node of this.members()) {
      const raft = node.raft!;
      if (raft.leader !== leader.id || raft.term !== lr.term) return false;
      if (node.appliedIndex !== lr.log.committed) return false;
    }
    return true;
  }

  private finalChecks(): string | null {
    this.checkLogs(true);
    const members = this.members();
    const fingerprints = new Set(members.map((n) => n.kv.fingerprint()));
    if (fingerprints.size > 1) return `replicas diverge after convergence: ${[...fingerprints].join(" / ")}`;
    // No acknowledged write disappears: the committed log still holds each one where it was applied.
    for (const w of this.clients.acknowledgedWrites()) {
      const entry = this.invariants.committedEntry(w.index);
      const cmd = entry === undefined ? undefined : decodeCommand(entry.data);
      if (cmd?.client !== w.client || cmd.seq !== w.seq) {
        return `acknowledged write of client ${w.client} seq ${w.seq} is no longer at log index ${w.index}`;
      }
    }
    const leader = this.leaderNode()?.raft;
    if (leader) this.invariants.leaderComplete(leader);
    const history = this.clients.finalHistory();
    this.stats.historyOps = history.length;
    const result = checkLinearizable(history);
    this.stats.checkerStates = result.states;
    if (!result.ok) return `history of key ${result.key} is not linearizable (${history.length} operations)`;
    return null;
  }

  private finishStats(): SimStats {
    const s = this.stats;
    const t = this.totals;
    s.elections = t.electionsStarted;
    s.preVotes = t.preVotesStarted;
    s.preVoteRejections = t.preVoteRejections;
    s.leadersElected = t.leadersElected;
    s.snapshotsSent = t.snapshotsSent;
    s.snapshotsInstalled = t.snapshotsInstalled;
    s.transfers = t.transfersStarted;
    s.readsServed = t.readsServed;
    s.messagesLost = this.network.lost;
    s.opsOk = this.clients.stats.ok;
    s.opsRefused = this.clients.stats.refused;
    s.opsUnknown = this.clients.stats.timedOut;
    return s;
  }
}
