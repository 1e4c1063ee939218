// Decides who this replica is on start: the identity in its data dir (a restart), or a new one from
// --initial-cluster / --dev (static bootstrap) or --join (dynamic). A fresh data dir for a static member whose peers
// already know it as started means it lost its data: refused with a clear error instead of voting twice.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, VigieError } from "../../errors.js";
import type { Logger } from "../../log.js";
import type { MemberInfo } from "../replica.js";
import { PROBE_PATH } from "../transport/protocol.js";
import { Pool } from "../undici-pool.js";
import { IDENTITY_FILE, IdentityFileError, type MemberIdentity, readIdentity, writeIdentity } from "./identity.js";
import { deriveClusterId, deriveMemberId, type InitialCluster, normalizePeerUrl, parseInitialCluster } from "./ids.js";
import { joinCluster, type PeerKind } from "./join.js";

export interface BootstrapOptions {
  name: string;
  dataDir: string;
  /** The URL peers reach this member at. */
  peerUrl: string;
  /** The flag that set `peerUrl`, for messages: --advertise-peer when given, else --listen-peer. */
  peerUrlFlag?: string;
  initialCluster?: string | Record<string, string> | undefined;
  join?: string | undefined;
  logger: Logger;
}

export class LostDataDirError extends VigieError {
  constructor(name: string, dataDir: string, peer: string) {
    super(
      "VIGIE_ERR_LOST_DATA_DIR",
      `member "${name}": data dir ${dataDir} is empty, but peer ${peer} knows this member as already started: ` +
        "it lost its data and must not vote again. Remove it from the cluster (vigie member remove) and rejoin with " +
        "--join under a new data dir",
    );
  }
}

/** A restart from the data dir of a member the cluster removed: etcd 3.4 refuses it the same way, and exits. */
export class RemovedMemberError extends VigieError {
  constructor(name: string, memberId: number, dataDir: string, peer: string) {
    super(
      "VIGIE_ERR_REMOVED_MEMBER",
      `member "${name}" (id ${memberId.toString(16)}) was removed from the cluster (peer ${peer} says so): its data ` +
        `dir ${dataDir} must not be used again. Delete it and rejoin as a new member with --join`,
    );
  }
}

/** What the peer server answers on GET /raft/v1/probe. */
export interface ProbeAnswer {
  clusterId: number;
  memberId: number;
  members: MemberInfo[];
  /** Ids removed from the cluster: such a member may never come back under the same id. */
  removed: number[];
}

export async function resolveIdentity(
  options: BootstrapOptions,
): Promise<{ identity: MemberIdentity; fresh: boolean }> {
  const existing = await readIdentity(options.dataDir);
  if (existing !== undefined) {
    if (existing.name !== options.name) {
      throw new ConfigError(
        `--name "${options.name}" does not match the data dir ${options.dataDir}, which belongs to member "${existing.name}"`,
      );
    }
    if (options.join !== undefined || options.initialCluster !== undefined) {
      options.logger.info("data dir already initialized: --initial-cluster/--join ignored, restarting from it");
    }
    warnIfAnotherCluster(options, existing);
    await refuseIfRemoved(options, existing);
    return { identity: existing, fresh: false };
  }
  // A log without an identity cannot be trusted to belong to the member we are about to create.
  if (existsSync(join(options.dataDir, "wal"))) {
    throw new IdentityFileError(
      join(options.dataDir, IDENTITY_FILE),
      "missing, but the data dir holds a write-ahead log: refusing to guess which member it belongs to " +
        "(restore the file, or start from an empty data dir)",
    );
  }
  let identity: MemberIdentity;
  if (options.join !== undefined) {
    if (options.initialCluster !== undefined) throw new ConfigError("--join and --initial-cluster exclude each other");
    identity = await joinCluster({
      joinUrl: options.join,
      name: options.name,
      peerUrl: options.peerUrl,
      logger: options.logger,
      probePeer: peerKind,
    });
  } else {
    const initial =
      options.initialCluster === undefined
        ? [{ name: options.name, peerUrl: normalizePeerUrl(options.peerUrl, peerUrlFlag(options)) }]
        : parseInitialCluster(options.initialCluster);
    identity = staticIdentity(options.name, options.peerUrl, peerUrlFlag(options), initial);
    if (initial.length > 1) await refuseIfKnownAsStarted(options, identity, initial);
  }
  await writeIdentity(options.dataDir, identity);
  return { identity, fresh: true };
}

/**
 * A restart ignores --initial-cluster (like etcd), but one that describes another cluster than the data dir's is
 * most likely a data dir left from an earlier cluster, or flags meant for another member: said loudly, since this
 * member will then talk only to the peers its data dir knows.
 */
function warnIfAnotherCluster(options: BootstrapOptions, existing: MemberIdentity): void {
  if (options.initialCluster === undefined || options.join !== undefined) return;
  const initial = parseInitialCluster(options.initialCluster);
  const described = deriveClusterId(initial);
  if (described === existing.clusterId) return;
  // The same founders at other URLs: members moved (`member update`) and the flags were edited to match.
  const names = (list: ReadonlyArray<{ name: string }>) => JSON.stringify(list.map((m) => m.name).sort());
  if (existing.bootstrapVoters.length > 0 && names(initial) === names(existing.bootstrapMembers)) return;
  options.logger.warn(
    { dataDir: options.dataDir, dataDirCluster: existing.clusterId.toString(16), flagCluster: described.toString(16) },
    "the data dir belongs to another cluster than --initial-cluster describes: restarting as a member of the data " +
      "dir's cluster. To found the cluster --initial-cluster describes, start this member from an empty data dir",
  );
}

function peerUrlFlag(options: BootstrapOptions): string {
  return options.peerUrlFlag ?? "--listen-peer";
}

function staticIdentity(name: string, peerUrl: string, flag: string, initial: InitialCluster): MemberIdentity {
  const self = initial.find((m) => m.name === name);
  if (self === undefined) {
    throw new ConfigError(`--initial-cluster does not list this member's --name "${name}"`);
  }
  const ownUrl = normalizePeerUrl(peerUrl, flag);
  if (self.peerUrl !== ownUrl) {
    throw new ConfigError(`--initial-cluster gives "${name}" the peer URL ${self.peerUrl}, but ${flag} is ${ownUrl}`);
  }
  const clusterId = deriveClusterId(initial);
  const members: MemberInfo[] = initial.map((m) => ({
    ID: deriveMemberId(clusterId, m.name, m.peerUrl),
    name: m.name,
    peerURLs: [m.peerUrl],
    clientURLs: [],
    isLearner: false,
  }));
  return {
    version: 1,
    name,
    memberId: deriveMemberId(clusterId, name, self.peerUrl),
    clusterId,
    bootstrapMembers: members,
    bootstrapVoters: members.map((m) => m.ID),
  };
}

/**
 * GET a peer's probe answer (undefined unless it answers 200) within 500 ms. Through undici's Pool rather than the
 * global fetch: the first fetch loads node's built-in copy of undici and compiles its HTTP parser, ~10 MB that every
 * founding member kept for its whole life for this one request at start-up.
 */
export async function getProbe(peerUrl: string): Promise<ProbeAnswer | undefined> {
  const url = new URL(`${peerUrl}${PROBE_PATH}`);
  const pool = new Pool(url.origin, { connections: 1 });
  try {
    const response = await pool.request({
      method: "GET",
      path: `${url.pathname}${url.search}`,
      signal: AbortSignal.timeout(500),
    });
    if (response.statusCode !== 200) {
      await response.body.dump();
      return undefined;
    }
    return (await response.body.json()) as ProbeAnswer;
  } finally {
    await pool.destroy();
  }
}

/** Whether a vigie member serves `peerUrl` (its probe answers with a cluster id), another server, or nobody. */
async function peerKind(peerUrl: string): Promise<PeerKind> {
  try {
    const answer = await getProbe(peerUrl);
    return answer !== undefined && typeof answer.clusterId === "number" ? "vigie" : "other";
  } catch {
    return "unreachable";
  }
}

/** Asks the other founding members whether they saw this member publish itself (it then had a data dir). */
async function refuseIfKnownAsStarted(options: BootstrapOptions, identity: MemberIdentity, initial: InitialCluster) {
  await Promise.all(
    initial
      .filter((m) => m.name !== options.name)
      .map(async (peer) => {
        let answer: ProbeAnswer | undefined;
        try {
          answer = await getProbe(peer.peerUrl);
        } catch {
          return; // Not up yet: the normal case while a new cluster starts.
        }
        if (answer === undefined) return;
        if (answer.clusterId !== identity.clusterId) return;
        const me = answer.members.find((m) => m.ID === identity.memberId);
        const removed = Array.isArray(answer.removed) && answer.removed.includes(identity.memberId);
        if (removed || (me !== undefined && me.clientURLs.length > 0)) {
          throw new LostDataDirError(options.name, options.dataDir, `${peer.name} (${peer.peerUrl})`);
        }
      }),
  );
}

/**
 * A member removed while it was down (or whose removal it never received) would come back believing it still
 * votes: the others refuse its messages, but it would campaign forever and serve stale reads. Its log cannot tell
 * it, so it asks the peers its data dir knows; one that answers for the same cluster and lists it as removed ends
 * the start. Peers out of reach decide nothing (a restart while others are down is normal); a probe waits 500 ms.
 */
async function refuseIfRemoved(options: BootstrapOptions, identity: MemberIdentity): Promise<void> {
  const peers = identity.bootstrapMembers.filter((m) => m.ID !== identity.memberId && m.peerURLs[0] !== undefined);
  await Promise.all(
    peers.map(async (peer) => {
      const peerUrl = peer.peerURLs[0] as string;
      const answer = await getProbe(peerUrl).catch(() => undefined);
      if (answer === undefined || answer.clusterId !== identity.clusterId) return;
      if (Array.isArray(answer.removed) && answer.removed.includes(identity.memberId)) {
        throw new RemovedMemberError(options.name, identity.memberId, options.dataDir, peerUrl);
      }
    }),
  );
}
