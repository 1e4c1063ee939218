// The fault profile of one run, drawn from its seed: cluster shape, Raft options and flow-control limits, network
// misbehaviour, and how often partitions, crashes, pauses, membership changes, transfers and snapshots happen.
import type { SimRandom } from "./random.js";

export interface FaultProfile {
  voters: number;
  learners: number;
  preVote: boolean;
  checkQuorum: boolean;
  electionTick: number;
  heartbeatTick: number;
  maxSizePerMsgBytes: number;
  maxInflightMsgs: number;
  maxInflightBytes: number;
  maxUncommittedEntriesBytes: number;
  lossRate: number;
  duplicateRate: number;
  minDelayTicks: number;
  maxDelayTicks: number;
  /** Per-tick probabilities of starting each fault. */
  partitionRate: number;
  oneWayPartitionShare: number;
  crashRate: number;
  /** Probability that a crash happens mid-Ready (after persisting, before sending). */
  crashMidReadyShare: number;
  pauseRate: number;
  membershipRate: number;
  transferRate: number;
  snapshotEveryEntries: number;
  snapshotKeepTail: number;
  clients: number;
  keys: number;
  clientThinkTicks: number;
}

export function drawProfile(r: SimRandom): FaultProfile {
  const voters = r.pick([1, 2, 3, 3, 3, 4, 5, 5, 5, 6, 7]);
  const calm = r.chance(0.1);
  // Tick granularity varies per seed; every rate and duration below is scaled to protocol time (election
  // timeouts), so a seed with 100 ticks per election timeout sees as many faults per election as one with 10.
  const electionTick = r.pick([20, 50, 100, 200]);
  const scale = electionTick / 10;
  const perTick = (rates: number[]) => r.pick(rates) / scale;
  return {
    voters,
    learners: r.pick([0, 0, 1, 1, 2]),
    preVote: r.chance(0.8),
    checkQuorum: r.chance(0.8),
    electionTick,
    heartbeatTick: Math.max(1, Math.round(electionTick / r.pick([3, 5]))),
    maxSizePerMsgBytes: r.pick([60, 300, 4096, 1 << 20]),
    maxInflightMsgs: r.pick([1, 2, 8, 256]),
    maxInflightBytes: r.pick([0, 0, 500, 100_000]),
    maxUncommittedEntriesBytes: r.pick([200, 4096, 1 << 30]),
    lossRate: calm ? 0 : r.pick([0, 0.01, 0.05, 0.1, 0.25]),
    duplicateRate: calm ? 0 : r.pick([0, 0.01, 0.05, 0.2]),
    minDelayTicks: 1,
    maxDelayTicks: Math.max(1, Math.round(r.pick([0.1, 0.2, 0.4, 0.8, 2]) * scale)),
    partitionRate: calm ? 0 : perTick([0, 0.002, 0.005, 0.02]),
    oneWayPartitionShare: r.pick([0, 0.3, 0.6]),
    crashRate: calm ? 0 : perTick([0, 0.001, 0.004, 0.01]),
    crashMidReadyShare: r.pick([0, 0.5]),
    pauseRate: calm ? 0 : perTick([0, 0.001, 0.004]),
    membershipRate: perTick([0, 0.003, 0.01, 0.02]),
    transferRate: perTick([0, 0.002, 0.01]),
    snapshotEveryEntries: r.pick([0, 5, 20, 100]),
    snapshotKeepTail: r.pick([0, 2, 10]),
    clients: r.pick([1, 3, 5, 8]),
    keys: r.pick([1, 2, 4]),
    clientThinkTicks: Math.round(r.pick([0, 0.3, 1]) * electionTick),
  };
}

/** A one-line summary for run output. */
export function describeProfile(p: FaultProfile): string {
  return (
    `electionTick=${p.electionTick} voters=${p.voters} learners=${p.learners} preVote=${p.preVote} checkQuorum=${p.checkQuorum} ` +
    `loss=${p.lossRate} dup=${p.duplicateRate} delay=${p.minDelayTicks}-${p.maxDelayTicks} ` +
    `partition=${p.partitionRate} crash=${p.crashRate} pause=${p.pauseRate} membership=${p.membershipRate} ` +
    `transfer=${p.transferRate} snapshotEvery=${p.snapshotEveryEntries} inflight=${p.maxInflightMsgs} ` +
    `msgBytes=${p.maxSizePerMsgBytes} clients=${p.clients} keys=${p.keys}`
  );
}
