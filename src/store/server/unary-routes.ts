// The unary gateway calls: JSON body in (already parsed), JSON body out. Each maps one etcd RPC onto the Replica:
// writes are proposed through Raft, linearizable reads wait for the ReadIndex barrier, serializable reads and
// lease/maintenance queries are served from local state.
import type { Replica } from "../replica.js";
import {
  decodeLeaseGrantRequest,
  decodeLeaseId,
  decodeLeaseTimeToLiveRequest,
  decodeMemberAddRequest,
  decodeMemberId,
  decodeMemberUpdateRequest,
  encodeLeaseGrantResponse,
  encodeLeaseLeasesResponse,
  encodeLeaseTimeToLiveResponse,
  encodeMember,
  encodeMemberList,
  encodeStatus,
} from "./admin-codec.js";
import {
  decodeCompactionRequest,
  decodeDeleteRangeRequest,
  decodePutRequest,
  decodeRangeRequest,
  decodeTxnRequest,
  encodeDeleteRangeResponse,
  encodeHeader,
  encodePutResponse,
  encodeRangeResponse,
  encodeTxnResponse,
} from "./kv-codec.js";
import { type JsonObject, ProtoReader } from "./proto-json.js";

export type UnaryHandler = (replica: Replica, body: unknown) => Promise<JsonObject>;

interface UnaryRoute {
  /** Go type of the request message (for enum error messages). */
  goName: string;
  handle: (replica: Replica, reader: ProtoReader) => Promise<JsonObject>;
}

/** A top-level header: ids and term from the replica now, the revision the operation saw. */
function header(replica: Replica, revision: number | undefined): JsonObject {
  return encodeHeader(replica.header(), revision);
}

const ROUTES: Record<string, UnaryRoute> = {
  "/v3/kv/range": {
    goName: "etcdserverpb.RangeRequest",
    handle: async (replica, reader) => {
      const request = decodeRangeRequest(reader);
      if (request.serializable !== true) await replica.linearizableBarrier();
      const response = replica.kv.range(request);
      return encodeRangeResponse(response, header(replica, response.header.revision));
    },
  },
  "/v3/kv/put": {
    goName: "etcdserverpb.PutRequest",
    handle: async (replica, reader) => {
      const response = await replica.propose({ type: "put", request: decodePutRequest(reader) });
      return encodePutResponse(response, header(replica, response.header.revision));
    },
  },
  "/v3/kv/deleterange": {
    goName: "etcdserverpb.DeleteRangeRequest",
    handle: async (replica, reader) => {
      const response = await replica.propose({ type: "deleteRange", request: decodeDeleteRangeRequest(reader) });
      return encodeDeleteRangeResponse(response, header(replica, response.header.revision));
    },
  },
  "/v3/kv/txn": {
    goName: "etcdserverpb.TxnRequest",
    handle: async (replica, reader) => {
      const response = await replica.propose({ type: "txn", request: decodeTxnRequest(reader) });
      return encodeTxnResponse(response, header(replica, response.header.revision));
    },
  },
  "/v3/kv/compaction": {
    goName: "etcdserverpb.CompactionRequest",
    handle: async (replica, reader) => {
      const response = await replica.propose({ type: "compaction", request: decodeCompactionRequest(reader) });
      return { header: header(replica, response.header.revision) };
    },
  },
  "/v3/lease/grant": {
    goName: "etcdserverpb.LeaseGrantRequest",
    handle: async (replica, reader) => {
      const response = await replica.propose({ type: "leaseGrant", request: decodeLeaseGrantRequest(reader) });
      return encodeLeaseGrantResponse(response, header(replica, response.header.revision));
    },
  },
  "/v3/lease/revoke": {
    goName: "etcdserverpb.LeaseRevokeRequest",
    handle: async (replica, reader) => {
      const response = await replica.propose({ type: "leaseRevoke", request: { ID: decodeLeaseId(reader) } });
      return { header: header(replica, response.header.revision) };
    },
  },
  "/v3/lease/timetolive": {
    goName: "etcdserverpb.LeaseTimeToLiveRequest",
    handle: async (replica, reader) => {
      const response = await replica.leaseTimeToLive(decodeLeaseTimeToLiveRequest(reader));
      return encodeLeaseTimeToLiveResponse(response, header(replica, response.header.revision));
    },
  },
  "/v3/lease/leases": {
    goName: "etcdserverpb.LeaseLeasesRequest",
    handle: async (replica) => {
      const response = await replica.leaseLeases();
      return encodeLeaseLeasesResponse(response, header(replica, response.header.revision));
    },
  },
  // etcd: cluster responses carry no revision in their header.
  "/v3/cluster/member/list": {
    goName: "etcdserverpb.MemberListRequest",
    handle: async (replica) => encodeMemberList(await replica.members(), header(replica, undefined)),
  },
  "/v3/cluster/member/add": {
    goName: "etcdserverpb.MemberAddRequest",
    handle: async (replica, reader) => {
      const request = decodeMemberAddRequest(reader);
      const { member, members } = await replica.addMember(request.peerURLs, request.isLearner);
      const out = encodeMemberList(members, header(replica, undefined));
      return { header: out.header, member: encodeMember(member), ...(out.members ? { members: out.members } : {}) };
    },
  },
  "/v3/cluster/member/remove": {
    goName: "etcdserverpb.MemberRemoveRequest",
    handle: async (replica, reader) =>
      encodeMemberList(await replica.removeMember(decodeMemberId(reader)), header(replica, undefined)),
  },
  "/v3/cluster/member/promote": {
    goName: "etcdserverpb.MemberPromoteRequest",
    handle: async (replica, reader) =>
      encodeMemberList(await replica.promoteMember(decodeMemberId(reader)), header(replica, undefined)),
  },
  "/v3/cluster/member/update": {
    goName: "etcdserverpb.MemberUpdateRequest",
    handle: async (replica, reader) => {
      const { id, peerURLs } = decodeMemberUpdateRequest(reader);
      return encodeMemberList(await replica.updateMember(id, peerURLs), header(replica, undefined));
    },
  },
  "/v3/maintenance/status": {
    goName: "etcdserverpb.StatusRequest",
    handle: async (replica) => {
      const status = replica.status();
      return encodeStatus(status, header(replica, status.header.revision));
    },
  },
};

/** The handler for a unary path, or undefined when the path is not a unary call. */
export function unaryHandler(path: string): UnaryHandler | undefined {
  const route = ROUTES[path];
  if (route === undefined) return undefined;
  return (replica, body) => route.handle(replica, ProtoReader.ofBody(body, route.goName));
}

export const UNARY_PATHS: readonly string[] = Object.keys(ROUTES);
