// Starts a running replica: identity (restart, static bootstrap or join), WAL recovery, the key space restored from
// the newest snapshot, the Raft core, the peer transport and the driver loop. Returns the `Replica` the client API
// serves, plus `close()`.

import { mkdir } from "node:fs/promises";
import type { Logger } from "../log.js";
import type { MetricsRegistry } from "../metrics.js";
import { resolveIdentity } from "./cluster/bootstrap.js";
import type { MemberIdentity } from "./cluster/identity.js";
import { decodeMemberContext, MemberTable } from "./cluster/members.js";
import { KvStore } from "./mvcc/kv-store.js";
import { RaftDriver } from "./node/driver.js";
import { registerNodeMetrics } from "./node/metrics.js";
import type { RaftPersistence } from "./node/persistence.js";
import { ReplicaNode } from "./node/replica-node.js";
import { decodeSnapshotData } from "./node/snapshot-data.js";
import { WalPersistence } from "./node/wal-persistence.js";
import { decodeConfChange } from "./raft/codec.js";
import { MemoryStorage } from "./raft/memory-storage.js";
import { createPrng } from "./raft/prng.js";
import { RaftNode } from "./raft/raft-node.js";
import type { Entry } from "./raft/types.js";
import type { Replica } from "./replica.js";
import { PeerTransport } from "./transport/transport.js";
import { lockDirectory } from "./wal/dir-lock.js";
import { SnapshotCorruptError } from "./wal/errors.js";
import { snapshotFilePath } from "./wal/wal.js";

/** Clock settings. Defaults suit a LAN or loopback: heartbeat 50 ms, election timeout 500–1000 ms. */
export interface ReplicaTiming {
  tickMs: number;
  heartbeatTicks: number;
  electionTicks: number;
  /** How long a proposal or read may wait for the cluster before failing with "request timed out". */
  requestTimeoutMs: number;
}

export const DEFAULT_TIMING: ReplicaTiming = {
  tickMs: 50,
  heartbeatTicks: 1,
  electionTicks: 10,
  requestTimeoutMs: 5000,
};

/**
 * History kept for watchers that resume from an older revision and for historical reads. 10,000 revisions of small
 * values is a few MB; a watcher further behind than that resyncs (the sidecar does so on `compact_revision`).
 */
export const DEFAULT_HISTORY_RETAIN_REVISIONS = 10_000;
export const DEFAULT_COMPACTION_INTERVAL_MS = 60_000;

export interface StartReplicaOptions {
  name: string;
  dataDir: string;
  /** Where the peer server listens (port 0 picks one; the advertised URL is then the bound one). */
  listenPeerUrl: string;
  /** The peer URL other members use; defaults to `listenPeerUrl` (or the bound address for port 0). */
  advertisePeerUrl?: string;
  /** This member's client URL as advertised in the member list. */
  clientUrl: string;
  initialCluster?: string | Record<string, string> | undefined;
  join?: string | undefined;
  /** Voters wanted: a caught-up learner is promoted while the cluster has fewer. */
  voters: number;
  logger: Logger;
  metrics: MetricsRegistry;
  timing?: Partial<ReplicaTiming>;
  /**
   * Snapshot the store every this many applied entries (env VIGIE_SNAPSHOT_COUNT). Default: every 10,000 entries,
   * or, in a larger store, once the entries since the last snapshot hold half its size (snapshot-policy.ts).
   */
  snapshotEveryEntries?: number;
  /** Revisions of history kept in memory; older ones are compacted by the leader (default 10,000). */
  historyRetainRevisions?: number;
  /** How often the leader compacts (default every 60 s). */
  compactionIntervalMs?: number;
  /** Called when the replica had to stop on its own (storage failure); the agent exits. */
  onFatal?: (error: Error) => void;
}

export interface RunningReplica extends Replica {
  readonly name: string;
  /** The peer URL the transport listens on. */
  readonly peerUrl: string;
  /** Stops the replica; a leader first hands leadership over unless `handOffLeadership` is false. */
  close(options?: { handOffLeadership?: boolean }): Promise<void>;
}

export async function startReplica(options: StartReplicaOptions): Promise<RunningReplica> {
  const timing = { ...DEFAULT_TIMING, ...options.timing };
  const logger = options.logger.child({ component: "replica", member: options.name });
  const configuredSnapshotEntries =
    options.snapshotEveryEntries ?? (Number(process.env.VIGIE_SNAPSHOT_COUNT ?? "") || 0);
  const snapshotEveryEntries = configuredSnapshotEntries || 10_000;
  const snapshotKeepEntries = Math.min(5000, Math.floor(snapshotEveryEntries / 2));

  // The peer server must be bound before joining: the leader starts replicating as soon as the learner is added.
  let transport: PeerTransport | undefined;
  let replica: ReplicaNode | undefined;
  let driver: RaftDriver | undefined;
  // One process per data dir from its first read, not only from the WAL's opening: two agents started at once on an
  // empty dir both wrote an identity, and with --join both joined the cluster, before the WAL's lock stopped one.
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const releaseDataDir = await lockDirectory(options.dataDir, "data dir");
  let persistence: RaftPersistence;
  let identity: MemberIdentity;
  let fresh: boolean;
  try {
    ({ identity, fresh } = await resolveIdentity({
      name: options.name,
      dataDir: options.dataDir,
      peerUrl: options.advertisePeerUrl ?? options.listenPeerUrl,
      peerUrlFlag: options.advertisePeerUrl === undefined ? "--listen-peer" : "--advertise-peer",
      initialCluster: options.initialCluster,
      join: options.join,
      logger,
    }));
    persistence = await WalPersistence.open(options.dataDir, logger, snapshotKeepEntries);
  } catch (error) {
    await releaseDataDir().catch(() => {});
    throw error;
  }
  try {
    const recovered = await persistence.load();
    const storage = new MemoryStorage();
    const kv = new KvStore();
    const members = MemberTable.fromList(identity.bootstrapMembers);
    if (recovered.snapshot !== null) {
      storage.applySnapshot(recovered.snapshot);
      try {
        const { header, kv: kvData } = decodeSnapshotData(recovered.snapshot.data);
        kv.restore(kvData);
        members.replaceWith(header.members, header.removed);
      } catch (error) {
        // The file passed its checksum (a format change or a bug): still name it, as for a damaged one.
        const file = snapshotFilePath(options.dataDir, recovered.snapshot.metadata);
        throw new SnapshotCorruptError(file, `cannot be restored: ${(error as Error).message}`);
      }
    }
    storage.setHardState(recovered.hardState);
    storage.append(recovered.entries);
    logger.info(
      {
        member: identity.memberId.toString(16),
        cluster: identity.clusterId.toString(16),
        fresh,
        snapshotIndex: recovered.snapshot?.metadata.index ?? 0,
        entries: recovered.entries.length,
      },
      fresh ? "starting a new replica" : "restarting from the data dir",
    );
    warnIfPeerUrlMoved(logger, options, knownPeerUrl(members, recovered.entries, identity.memberId));

    const raft = new RaftNode(
      {
        id: identity.memberId,
        voters: identity.bootstrapVoters,
        learners: [],
        electionTick: timing.electionTicks,
        heartbeatTick: timing.heartbeatTicks,
        preVote: true,
        checkQuorum: true,
        maxSizePerMsgBytes: 1024 * 1024,
        maxInflightMsgs: 256,
        maxInflightBytes: 0,
        maxUncommittedEntriesBytes: 64 * 1024 * 1024,
        applied: kv.appliedIndex,
        random: createPrng(identity.memberId ^ Date.now()),
      },
      storage,
    );

    const metrics = registerNodeMetrics(options.metrics);
    transport = new PeerTransport({
      clusterId: identity.clusterId,
      memberId: identity.memberId,
      logger: options.logger.child({ component: "peer", member: options.name }),
      onMessages: (messages) => driver?.receive(messages),
      onUnreachable: (peer) => void driver?.run((r) => r.reportUnreachable(peer)).catch(() => {}),
      onSnapshotResult: (peer, ok) => void driver?.run((r) => r.reportSnapshot(peer, ok)).catch(() => {}),
      acceptsFrom: (peer) => !members.isRemoved(peer),
      probe: () => ({
        clusterId: identity.clusterId,
        memberId: identity.memberId,
        members: members.list(),
        removed: members.removedIds(),
      }),
      requestTimeoutMs: Math.max(500, timing.tickMs * timing.electionTicks),
    });
    const boundPeerUrl = await transport.listen(options.listenPeerUrl);
    for (const member of members.list()) {
      if (member.peerURLs[0] !== undefined) transport.setPeer(member.ID, member.peerURLs[0]);
    }
    metrics.peerMessagesDropped.collect(() => (transport?.droppedMessages() ?? 0) + (driver?.droppedInbound ?? 0));

    const node = new ReplicaNode({
      name: identity.name,
      clusterId: identity.clusterId,
      memberId: identity.memberId,
      clientUrls: [options.clientUrl],
      kv,
      raft,
      members,
      transport,
      logger,
      metrics,
      requestTimeoutMs: timing.requestTimeoutMs,
      electionTimeoutMs: timing.tickMs * timing.electionTicks * 2,
      wantedVoters: options.voters,
      dbSizeBytes: () => storage.snapshot().data.length,
      historyRetainRevisions: options.historyRetainRevisions ?? DEFAULT_HISTORY_RETAIN_REVISIONS,
      compactionIntervalMs: options.compactionIntervalMs ?? DEFAULT_COMPACTION_INTERVAL_MS,
    });
    replica = node;
    const peerTransport = transport;
    driver = new RaftDriver({
      raft,
      storage,
      persistence,
      kv,
      members,
      logger,
      metrics,
      tickMs: timing.tickMs,
      snapshotPolicy: { everyEntries: snapshotEveryEntries, scalesWithSize: configuredSnapshotEntries === 0 },
      snapshotKeepEntries,
      hooks: {
        send: (messages) => peerTransport.send(messages),
        onSoftState: (state) => node.onSoftState(state),
        onEntry: (entry) => node.onEntry(entry),
        onConfChange: (cc, confState) => node.onConfChange(cc, confState),
        onRestored: () => node.onRestored(),
        onReadState: (context, index) => node.onReadState(context, index),
        onApplied: (index) => node.onApplied(index),
        onFatal: (error) => {
          node.shutdown();
          options.onFatal?.(error);
        },
      },
    });
    node.attach(driver);
    driver.start();

    let closed = false;
    const close = async (closeOptions?: { handOffLeadership?: boolean }): Promise<void> => {
      if (closed) return;
      closed = true;
      if (closeOptions?.handOffLeadership !== false) await node.handOffLeadership(timing.tickMs * timing.electionTicks);
      node.shutdown();
      driver?.stop();
      await driver?.idle();
      await peerTransport.close();
      await persistence.close();
      await releaseDataDir();
      kv.close();
      logger.info("replica stopped");
    };
    return Object.assign(node, { name: identity.name, peerUrl: boundPeerUrl, close }) as RunningReplica;
  } catch (error) {
    replica?.shutdown();
    driver?.stop();
    await transport?.close().catch(() => {});
    await persistence.close().catch(() => {});
    await releaseDataDir().catch(() => {});
    throw error;
  }
}

/**
 * The peer URL the cluster knows this member by: the snapshot's member table, then the membership changes in the
 * log after it (not applied yet at start-up; reading the table alone gave the URL from before a `member update`).
 */
function knownPeerUrl(table: MemberTable, entries: readonly Entry[], memberId: number): string | undefined {
  let known = table.get(memberId)?.peerURLs[0];
  for (const entry of entries) {
    if (entry.type !== "confChange") continue;
    const cc = decodeConfChange(entry.data);
    if (cc.nodeId !== memberId || cc.type === "removeNode" || cc.type === "promoteLearner") continue;
    known = decodeMemberContext(cc.context).peerURLs[0] ?? known;
  }
  return known;
}

/**
 * The cluster knows each member by the peer URL it was added with (or last given by `member update`): a member
 * restarted with another (--listen-peer or --advertise-peer changed) is still reached at the old one. Said loudly,
 * because the symptom (this member hears nothing) is far from the cause.
 */
function warnIfPeerUrlMoved(logger: Logger, options: StartReplicaOptions, knownUrl: string | undefined): void {
  const flag = options.advertisePeerUrl === undefined ? "--listen-peer" : "--advertise-peer";
  const given = URL.parse(options.advertisePeerUrl ?? options.listenPeerUrl);
  if (knownUrl === undefined || given === null || given.port === "0") return;
  if (`${given.protocol}//${given.host}` === knownUrl) return;
  logger.warn(
    { knownPeerUrl: knownUrl, [flag.slice(2)]: `${given.protocol}//${given.host}` },
    `the cluster knows this member at ${knownUrl}, not at the ${flag} URL it was restarted with: the other members ` +
      "still reach it there. Restart it with that URL, or tell them the new one: vigie member update <ID> <URL>",
  );
}
