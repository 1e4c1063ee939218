// JSON <-> replica shapes for the lease, cluster and maintenance services. etcd's proto spells these fields
// differently from the KV service: `ID`/`TTL`/`grantedTTL` in leases, `peerURLs`/`isLearner` in members and
// camelCase (`dbSize`, `raftIndex`) in status; the gateway writes them exactly so.
import type {
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
} from "../mvcc/commands.js";
import type { MemberInfo, ReplicaStatus } from "../replica.js";
import { GatewayError, Grpc } from "./errors.js";
import {
  type JsonObject,
  type ProtoReader,
  putBool,
  putBytes,
  putInt,
  putList,
  putString,
  RawNumber,
} from "./proto-json.js";

export function decodeLeaseGrantRequest(reader: ProtoReader): LeaseGrantRequest {
  const request = { TTL: reader.int64("TTL"), ID: reader.int64("ID") };
  // int64 fields beyond 2^53 are clamped (proto-json.ts): harmless for a lookup (no lease has such an id), but a
  // grant would create a lease under another id than asked. vigie's lease ids stop at 2^53-1: say so instead.
  const raw = reader.raw("ID");
  const asked = raw instanceof RawNumber ? raw.text : String(raw).trim();
  if (request.ID === Number.MAX_SAFE_INTEGER && asked !== String(Number.MAX_SAFE_INTEGER)) {
    throw new GatewayError(
      Grpc.InvalidArgument,
      `etcdserver: invalid lease ID ${asked}: vigie's lease ids are at most ${Number.MAX_SAFE_INTEGER}`,
    );
  }
  return request;
}

export function decodeLeaseId(reader: ProtoReader): number {
  return reader.int64("ID");
}

export function decodeLeaseTimeToLiveRequest(reader: ProtoReader): LeaseTimeToLiveRequest {
  return { ID: reader.int64("ID"), keys: reader.bool("keys") };
}

export function encodeLeaseGrantResponse(response: LeaseGrantResponse, header: JsonObject): JsonObject {
  const out: JsonObject = { header };
  putInt(out, "ID", response.ID);
  putInt(out, "TTL", response.TTL);
  putString(out, "error", response.error);
  return out;
}

export function encodeLeaseKeepAliveResponse(response: LeaseKeepAliveResponse, header: JsonObject): JsonObject {
  const out: JsonObject = { header };
  putInt(out, "ID", response.ID);
  putInt(out, "TTL", response.TTL);
  return out;
}

export function encodeLeaseTimeToLiveResponse(response: LeaseTimeToLiveResponse, header: JsonObject): JsonObject {
  const out: JsonObject = { header };
  putInt(out, "ID", response.ID);
  putInt(out, "TTL", response.TTL);
  putInt(out, "grantedTTL", response.grantedTTL);
  putList(out, "keys", response.keys, (key) => {
    const holder: JsonObject = {};
    putBytes(holder, "k", key);
    return holder.k ?? "";
  });
  return out;
}

export function encodeLeaseLeasesResponse(response: LeaseLeasesResponse, header: JsonObject): JsonObject {
  const out: JsonObject = { header };
  putList(out, "leases", response.leases, (lease) => {
    const item: JsonObject = {};
    putInt(item, "ID", lease.ID);
    return item;
  });
  return out;
}

// ---- cluster ----

export interface MemberAddRequest {
  peerURLs: string[];
  isLearner: boolean;
}

export function decodeMemberAddRequest(reader: ProtoReader): MemberAddRequest {
  return { peerURLs: validPeerUrls(reader), isLearner: reader.bool("isLearner") };
}

/**
 * `member update`: the member and its new peer URLs. etcd 3.4 takes any list there, even an empty one (the member
 * is then unreachable for good) or "bad"; vigie checks it as for an add.
 */
export function decodeMemberUpdateRequest(reader: ProtoReader): { id: number; peerURLs: string[] } {
  return { id: reader.uint64("ID"), peerURLs: validPeerUrls(reader) };
}

function validPeerUrls(reader: ProtoReader): string[] {
  const peerURLs = reader.strings("peerURLs");
  // etcd refuses an empty list the same way as a bad URL.
  if (peerURLs.length === 0) throw new GatewayError(Grpc.InvalidArgument, "etcdserver: given member URLs are invalid");
  for (const url of peerURLs) {
    if (!isValidPeerUrl(url)) throw new GatewayError(Grpc.InvalidArgument, "etcdserver: given member URLs are invalid");
  }
  // One spelling per URL (no trailing slash), so that "already taken" compares like with like: an update to another
  // member's URL plus a slash was accepted, and cut the updated member off.
  return peerURLs.map((url) => {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  });
}

/** etcd accepts `scheme://host:port` peer URLs with no path. */
function isValidPeerUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === "http:" || url.protocol === "https:") && url.port !== "" && url.pathname === "/";
  } catch {
    return false;
  }
}

export function decodeMemberId(reader: ProtoReader): number {
  return reader.uint64("ID");
}

export function encodeMember(member: MemberInfo): JsonObject {
  const out: JsonObject = {};
  putInt(out, "ID", member.ID);
  putString(out, "name", member.name);
  putList(out, "peerURLs", member.peerURLs, (url) => url);
  putList(out, "clientURLs", member.clientURLs, (url) => url);
  putBool(out, "isLearner", member.isLearner);
  return out;
}

export function encodeMemberList(members: MemberInfo[], header: JsonObject): JsonObject {
  const out: JsonObject = { header };
  putList(out, "members", members, encodeMember);
  return out;
}

// ---- maintenance ----

export function encodeStatus(status: ReplicaStatus, header: JsonObject): JsonObject {
  const out: JsonObject = { header };
  putString(out, "version", status.version);
  putInt(out, "dbSize", status.dbSize);
  putInt(out, "leader", status.leader);
  putInt(out, "raftIndex", status.raftIndex);
  putInt(out, "raftTerm", status.raftTerm);
  putInt(out, "raftAppliedIndex", status.raftAppliedIndex);
  putList(out, "errors", status.errors, (error) => error);
  // etcd 3.4 has dbSizeInUse too; vigie's store is in memory, so in-use = size.
  putInt(out, "dbSizeInUse", status.dbSize);
  putBool(out, "isLearner", status.isLearner);
  return out;
}
