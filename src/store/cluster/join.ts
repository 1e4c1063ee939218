// `--join clientURL`: a new member asks a running cluster (through its client API, like `etcdctl member add`) to
// add it as a learner, then starts with an empty log; the leader brings it up to date (by snapshot when its log
// was compacted). A name already in the cluster means this member lost its data dir: refused, it must rejoin as new.
import { VigieError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { StoreClient } from "../client.js";
import type { MemberInfo } from "../replica.js";
import type { MemberIdentity } from "./identity.js";

export class JoinError extends VigieError {
  /** The cluster could not answer right now (no leader): worth another try. */
  readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super("VIGIE_ERR_JOIN", message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options?.retryable ?? false;
  }
}

function toMemberInfo(m: { id: string; name: string; peerUrls: string[]; clientUrls: string[]; isLearner: boolean }) {
  return { ID: Number(m.id), name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls, isLearner: m.isLearner };
}

/**
 * What a member's peer URL answers to vigie's peer probe: `vigie` (a vigie peer), `other` (an HTTP server that is not
 * one: etcd answers 404), or `unreachable`.
 */
export type PeerKind = "vigie" | "other" | "unreachable";

/** The first line of an error, without a server's HTML page that some answers carry after it. */
function firstLine(error: unknown): string {
  return ((error as Error).message ?? String(error)).split("\n")[0]!.trim();
}

/**
 * Refuses, before asking to be added, a cluster that is not vigie: an etcd cluster lists and adds members through
 * the same API, and a learner added there would stay in etcd's member list, dead, forever (its peers speak etcd's
 * protobuf Raft). A vigie cluster has ids that are safe integers and members that answer vigie's peer probe.
 */
async function refuseIfNotVigie(
  joinUrl: string,
  clusterId: string,
  members: ReadonlyArray<{ name: string; peerUrls: string[] }>,
  probePeer: (peerUrl: string) => Promise<PeerKind>,
): Promise<void> {
  const notVigie = (why: string) =>
    new JoinError(
      `--join ${joinUrl}: the cluster there is not a vigie cluster (${why}; an etcd cluster?): a vigie replica ` +
        "cannot join it. To use an etcd cluster as the store, start the agent with --store-endpoints instead",
    );
  if (!Number.isSafeInteger(Number(clusterId)) || Number(clusterId) <= 0) {
    throw notVigie(`its cluster id ${clusterId} is not one vigie makes`);
  }
  const peerUrls = members.filter((m) => m.name !== "").flatMap((m) => m.peerUrls);
  const kinds = await Promise.all(peerUrls.map((url) => probePeer(url)));
  // Peers out of reach decide nothing (a vigie cluster may have members down); a peer that answers as another
  // server does, unless another one answered as vigie.
  if (!kinds.includes("vigie") && kinds.includes("other")) {
    throw notVigie("its members' peer URLs do not answer vigie's peer protocol");
  }
}

interface JoinOptions {
  joinUrl: string;
  name: string;
  peerUrl: string;
  logger: Logger;
  /** Asks a peer URL whether a vigie member serves it (bootstrap's probe). */
  probePeer: (peerUrl: string) => Promise<PeerKind>;
}

export async function joinCluster(options: JoinOptions): Promise<MemberIdentity> {
  const client = new StoreClient({ endpoints: [options.joinUrl], requestTimeoutMs: 10_000, connectionsPerEndpoint: 1 });
  const deadlineMs = Date.now() + JOIN_RETRY_MAX_MS;
  try {
    for (;;) {
      try {
        return await tryJoin(client, options);
      } catch (error) {
        // The cluster was between leaders ("leader changed", "no leader", "request timed out": etcd's Unavailable).
        // The add may even have committed: the next round's member list then shows this peer URL unstarted, and
        // this member takes that place. Refusing at once made a sidecar started during an election exit.
        const unavailable = error instanceof JoinError && error.retryable;
        if (!unavailable || Date.now() + JOIN_RETRY_PAUSE_MS >= deadlineMs) throw error;
        options.logger.info({ err: error.message }, "joining: the cluster is electing a leader; trying again");
        await new Promise((r) => setTimeout(r, JOIN_RETRY_PAUSE_MS));
      }
    }
  } finally {
    await client.close();
  }
}

/** How long a join keeps trying while the cluster has no leader, and the pause between tries. */
const JOIN_RETRY_MAX_MS = 10_000;
const JOIN_RETRY_PAUSE_MS = 200;
/** etcd's gRPC code Unavailable: no leader, leader changed, request timed out. */
const GRPC_UNAVAILABLE = 14;

async function tryJoin(client: StoreClient, options: JoinOptions): Promise<MemberIdentity> {
  let list: Awaited<ReturnType<StoreClient["memberList"]>>;
  try {
    list = await client.memberList();
  } catch (error) {
    throw new JoinError(`--join ${options.joinUrl}: cannot list the cluster's members: ${firstLine(error)}`, {
      cause: error,
      retryable: isUnavailable(error),
    });
  }
  await refuseIfNotVigie(options.joinUrl, list.header.clusterId, list.members, options.probePeer);
  const sameName = list.members.find((m) => m.name === options.name);
  if (sameName !== undefined) {
    throw new JoinError(
      `--join: a member named "${options.name}" (id ${BigInt(sameName.id).toString(16)}) is already in the cluster, ` +
        "but this data dir is empty: this member lost its data. Remove it (vigie member remove " +
        `${BigInt(sameName.id).toString(16)}) and join again, or join under a new --name`,
    );
  }
  // A member added beforehand (`vigie member add`) but never started: take its place instead of adding another.
  const preAdded = list.members.find((m) => m.name === "" && m.peerUrls.includes(options.peerUrl));
  if (preAdded !== undefined) {
    options.logger.info({ member: preAdded.id }, "joining as a member added beforehand");
    return identityFrom(
      options.name,
      Number(preAdded.id),
      Number(list.header.clusterId),
      list.members.map(toMemberInfo),
    );
  }
  const taken = list.members.find((m) => m.peerUrls.includes(options.peerUrl));
  if (taken !== undefined) {
    throw new JoinError(`--join: peer URL ${options.peerUrl} already belongs to member "${taken.name}" (${taken.id})`);
  }
  let added: Awaited<ReturnType<StoreClient["memberAdd"]>>;
  try {
    added = await client.memberAdd([options.peerUrl], true);
  } catch (error) {
    throw new JoinError(`--join ${options.joinUrl}: member add failed: ${firstLine(error)}`, {
      cause: error,
      retryable: isUnavailable(error),
    });
  }
  options.logger.info(
    { member: added.member.id, cluster: added.header.clusterId },
    "added to the cluster as a learner",
  );
  return identityFrom(
    options.name,
    Number(added.member.id),
    Number(added.header.clusterId),
    added.members.map(toMemberInfo),
  );
}

function isUnavailable(error: unknown): boolean {
  return (error as { grpcCode?: unknown }).grpcCode === GRPC_UNAVAILABLE;
}

function identityFrom(name: string, memberId: number, clusterId: number, members: MemberInfo[]): MemberIdentity {
  if (!Number.isSafeInteger(memberId) || memberId <= 0) throw new JoinError(`--join: bad member id ${memberId}`);
  if (!Number.isSafeInteger(clusterId) || clusterId <= 0) throw new JoinError(`--join: bad cluster id ${clusterId}`);
  return { version: 1, name, memberId, clusterId, bootstrapMembers: members, bootstrapVoters: [] };
}
