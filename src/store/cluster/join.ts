// `--join clientURL`: a new member asks a running cluster (through its client API, like `etcdctl member add`) to
// add it as a learner, then starts with an empty log; the leader brings it up to date (by snapshot when its log
// was compacted). A name already in the cluster means this member lost its data dir: refused, it must rejoin as new.
import { VigieError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { StoreClient } from "../client.js";
import type { MemberInfo } from "../replica.js";
import type { MemberIdentity } from "./identity.js";

export class JoinError extends VigieError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("VIGIE_ERR_JOIN", message, options);
  }
}

function toMemberInfo(m: { id: string; name: string; peerUrls: string[]; clientUrls: string[]; isLearner: boolean }) {
  return { ID: Number(m.id), name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls, isLearner: m.isLearner };
}

export async function joinCluster(options: {
  joinUrl: string;
  name: string;
  peerUrl: string;
  logger: Logger;
}): Promise<MemberIdentity> {
  const client = new StoreClient({ endpoints: [options.joinUrl], requestTimeoutMs: 10_000, connectionsPerEndpoint: 1 });
  try {
    let list: Awaited<ReturnType<StoreClient["memberList"]>>;
    try {
      list = await client.memberList();
    } catch (error) {
      throw new JoinError(`--join ${options.joinUrl}: cannot list the cluster's members: ${(error as Error).message}`, {
        cause: error,
      });
    }
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
      throw new JoinError(
        `--join: peer URL ${options.peerUrl} already belongs to member "${taken.name}" (${taken.id})`,
      );
    }
    let added: Awaited<ReturnType<StoreClient["memberAdd"]>>;
    try {
      added = await client.memberAdd([options.peerUrl], true);
    } catch (error) {
      throw new JoinError(`--join ${options.joinUrl}: member add failed: ${(error as Error).message}`, {
        cause: error,
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
  } finally {
    await client.close();
  }
}

function identityFrom(name: string, memberId: number, clusterId: number, members: MemberInfo[]): MemberIdentity {
  if (!Number.isSafeInteger(memberId) || memberId <= 0) throw new JoinError(`--join: bad member id ${memberId}`);
  if (!Number.isSafeInteger(clusterId) || clusterId <= 0) throw new JoinError(`--join: bad cluster id ${clusterId}`);
  return { version: 1, name, memberId, clusterId, bootstrapMembers: members, bootstrapVoters: [] };
}
