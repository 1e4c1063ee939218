// Safety invariants checked while the simulation runs. Any violation throws SafetyViolation, which the runner
// reports with the seed and the replay command. None of these checks is ever relaxed to let a seed pass.
import type { Entry, NodeId, RaftNode } from "../store/raft/index.js";

export class SafetyViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SafetyViolation";
  }
}

function violation(message: string): never {
  throw new SafetyViolation(message);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameEntry(a: Entry, b: Entry): boolean {
  return a === b || (a.term === b.term && a.index === b.index && a.type === b.type && sameBytes(a.data, b.data));
}

export class Invariants {
  /** The committed log as first applied anywhere: index → entry. Committed entries never change. */
  private committed: (Entry | undefined)[] = [];
  /** Highest index known committed (applied or covered by an installed snapshot somewhere). */
  committedIndex = 0;
  /** Snapshot-installed positions whose entry was not seen applied: index → term. */
  private snapshotTerms = new Map<number, number>();
  private leaderOfTerm = new Map<number, NodeId>();
  /** commitTerm[i]: the term of the first leader seen with commit index >= i ("committed in term T"). */
  private commitTerm: number[] = [];

  /** The committed entry at `index`, as first applied anywhere. */
  committedEntry(index: number): Entry | undefined {
    return this.committed[index];
  }

  /** At most one leader per term (Election Safety). */
  leader(node: NodeId, term: number): void {
    const other = this.leaderOfTerm.get(term);
    if (other !== undefined && other !== node) violation(`two leaders in term ${term}: ${other} and ${node}`);
    this.leaderOfTerm.set(term, node);
  }

  /** A node applies an entry: it must equal what every other node applied at that index (State Machine Safety). */
  applied(node: NodeId, entry: Entry): void {
    const known = this.committed[entry.index];
    if (known === undefined) {
      const snapTerm = this.snapshotTerms.get(entry.index);
      if (snapTerm !== undefined && snapTerm !== entry.term) {
        violation(
          `node ${node} applies (${entry.index}, term ${entry.term}) but a snapshot there has term ${snapTerm}`,
        );
      }
      this.committed[entry.index] = entry;
      if (entry.index > this.committedIndex) this.committedIndex = entry.index;
      return;
    }
    if (!sameEntry(known, entry)) {
      violation(
        `node ${node} applies a different entry at ${entry.index}: term ${entry.term} vs committed term ${known.term}`,
      );
    }
  }

  /** A node installed a snapshot at (index, term): that position must agree with the committed log. */
  restored(node: NodeId, index: number, term: number): void {
    const known = this.committed[index];
    if (known !== undefined && known.term !== term) {
      violation(`node ${node} installed a snapshot at (${index}, term ${term}) but committed term is ${known.term}`);
    }
    this.snapshotTerms.set(index, term);
    if (index > this.committedIndex) this.committedIndex = index;
  }

  /** A leader's commit index: indexes it commits first are "committed in" its term. */
  leaderCommit(term: number, committed: number): void {
    for (let i = this.commitTerm.length; i <= committed; i++) this.commitTerm[i] = term;
  }

  /**
   * Leader Completeness (Raft §5.4): an entry committed in term T is in the log of every leader of a term > T.
   * (A leader of an older term — e.g. one that was paused with its votes in flight — need not have it.)
   */
  leaderComplete(raft: RaftNode): void {
    const log = raft.log;
    let required = 0;
    for (let i = this.commitTerm.length - 1; i >= 1; i--) {
      if (this.commitTerm[i]! < raft.term) {
        required = i;
        break;
      }
    }
    if (log.lastIndex() < required) {
      violation(`leader ${raft.id} (term ${raft.term}) ends at ${log.lastIndex()} < ${required}, committed earlier`);
    }
    for (let i = Math.max(1, log.firstIndex()); i <= required; i++) {
      const known = this.committed[i];
      if (known === undefined) continue;
      const term = log.term(i);
      if (term !== known.term) {
        violation(`leader ${raft.id} (term ${raft.term}) has term ${term} at committed ${i} (term ${known.term})`);
      }
    }
  }

  /** Every node's committed prefix (from `from` on) agrees with the oracle; entries at or below commit are never replaced. */
  committedPrefix(raft: RaftNode, from = 1): void {
    const log = raft.log;
    const hi = Math.min(log.committed, log.lastIndex());
    for (let i = Math.max(1, from, log.firstIndex()); i <= hi; i++) {
      const known = this.committed[i];
      if (known === undefined) continue;
      const term = log.term(i);
      if (term !== known.term)
        violation(`node ${raft.id} holds term ${term} at its committed ${i}, oracle ${known.term}`);
    }
  }

  /** Log Matching: if two logs have an entry with the same index and term, they are identical up to it (checked
   * from `from` on). */
  static logMatching(a: RaftNode, b: RaftNode, from = 1): void {
    const lo = Math.max(from, a.log.firstIndex(), b.log.firstIndex());
    const hi = Math.min(a.log.lastIndex(), b.log.lastIndex());
    let top = -1;
    for (let i = hi; i >= lo; i--) {
      if (a.log.term(i) === b.log.term(i)) {
        top = i;
        break;
      }
    }
    if (top < lo) return;
    const ea = a.log.slice(lo, top + 1, Number.MAX_SAFE_INTEGER) ?? [];
    const eb = b.log.slice(lo, top + 1, Number.MAX_SAFE_INTEGER) ?? [];
    for (let k = 0; k < ea.length && k < eb.length; k++) {
      if (!sameEntry(ea[k]!, eb[k]!)) {
        violation(`log matching: nodes ${a.id} and ${b.id} agree at ${top} but differ at ${ea[k]!.index}`);
      }
    }
  }
}
