// The replica's Prometheus metrics, registered once on the shared registry. Names follow etcd's where one exists
// (etcd_server_* / etcd_disk_*) with a vigie_ prefix, so dashboards translate easily.
import type { Counter, Gauge, Histogram, MetricsRegistry } from "../../metrics.js";

export interface NodeMetrics {
  term: Gauge;
  commitIndex: Gauge;
  appliedIndex: Gauge;
  isLeader: Gauge;
  leaderChanges: Counter;
  proposalsFailed: Counter;
  proposalsApplied: Counter;
  walFsyncSeconds: Histogram;
  snapshotsTaken: Counter;
  snapshotsRestored: Counter;
  peerMessagesDropped: Gauge;
}

const FSYNC_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
];

/**
 * A counter with no labels exports 0 until it first moves, as Prometheus clients (and etcd) do: a series that is
 * absent until its first failure makes `rate(...)` and `== 0` alerts see "no data" instead of 0.
 */
function fromZero(counter: Counter): Counter {
  counter.inc(0);
  return counter;
}

export function registerNodeMetrics(registry: MetricsRegistry): NodeMetrics {
  const counter = (name: string, help: string) => fromZero(registry.counter(name, help));
  return {
    term: registry.gauge("vigie_server_raft_term", "Current Raft term of this member."),
    commitIndex: registry.gauge("vigie_server_raft_commit_index", "Highest Raft log index known committed."),
    appliedIndex: registry.gauge("vigie_server_raft_applied_index", "Highest Raft log index applied to the store."),
    isLeader: registry.gauge("vigie_server_is_leader", "1 when this member is the Raft leader."),
    leaderChanges: counter("vigie_server_leader_changes_seen_total", "Leader changes seen by this member."),
    proposalsFailed: counter("vigie_server_proposals_failed_total", "Proposals dropped or timed out."),
    proposalsApplied: counter("vigie_server_proposals_applied_total", "Entries applied to the store."),
    walFsyncSeconds: registry.histogram(
      "vigie_disk_wal_fsync_duration_seconds",
      "Latency of WAL appends that required an fsync.",
      FSYNC_BUCKETS_SECONDS,
    ),
    snapshotsTaken: counter("vigie_server_snapshots_taken_total", "Snapshots of the store taken locally."),
    snapshotsRestored: counter(
      "vigie_server_snapshots_restored_total",
      "Snapshots received from the leader and restored into the store.",
    ),
    peerMessagesDropped: registry.gauge(
      "vigie_network_peer_messages_dropped",
      "Raft messages dropped by the peer transport (peer unreachable or queue full).",
    ),
  };
}
