// A small client for the etcd v3 JSON gateway (etcd 3.4 and vigie's own store speak the same API).
// Everything the sidecar, the CLI and service registration need: KV (range/put/delete/txn/compaction),
// watch streams, leases, cluster membership and maintenance status.
//
// Keys and values go in as strings (UTF-8) or bytes and come out as Buffers; int64 fields come out as numbers,
// except IDs (lease, member, cluster), which can exceed 2^53 and stay decimal strings. Store errors are `EtcdError`
// (gRPC code + message); an unreachable store is `StoreUnavailableError` after every endpoint was tried.
// Failover: reads go on to the next endpoint after any connection failure; writes only when the connection failed
// before the request left (refused, unreachable), since a write whose answer was lost may have been applied; such a
// write is reported, not resent, and the next request starts at the next endpoint. Watch streams do not reconnect by
// themselves (src/watch/sync.ts does); `WatchStream.probe()` tells whether the member serving one still answers.
//
//   const client = new StoreClient({ endpoints: ["http://127.0.0.1:2379"] });
//   await client.put("/db/sql_master", "10.0.0.5");
//   const { kvs } = await client.range("/services/web/", { prefix: true });
//   for await (const response of client.watch("/db/", { prefix: true })) { ... }
import assert from "node:assert/strict";
import {
  decodeDelete,
  decodeMembers,
  decodeOpResult,
  decodePut,
  decodeRange,
  encodeCompare,
  encodeDeleteRequest,
  encodeOp,
  encodePutRequest,
  encodeRangeRequest,
} from "./client/requests.js";
import { parseAnswer, Transport, type TransportOptions } from "./client/transport.js";
import { type WatchOptions, WatchStream } from "./client/watch-stream.js";
import {
  type Bytes,
  decodeHeader,
  decodeId,
  decodeInt,
  type KeyValue,
  type ResponseHeader,
  type WireObject,
} from "./client/wire.js";

export { isConnectionError, ResponseTooLargeError, type TransportOptions } from "./client/transport.js";
export {
  type WatchEvent,
  WatchMessageTooLargeError,
  type WatchOptions,
  type WatchResponse,
  WatchStream,
} from "./client/watch-stream.js";
export {
  type Bytes,
  EtcdError,
  GRPC_INVALID_ARGUMENT,
  GRPC_NOT_FOUND,
  GRPC_OUT_OF_RANGE,
  GRPC_UNAVAILABLE,
  type KeyValue,
  prefixEnd,
  type ResponseHeader,
  toBytes,
} from "./client/wire.js";

/** etcd's limit on operations in one transaction. */
export const TXN_MAX_OPS = 128;

export interface RangeOptions {
  prefix?: boolean;
  rangeEnd?: Bytes;
  /** Read at this past revision (0 or omitted: the latest). */
  revision?: number;
  limit?: number;
  /** Answer from the local member without a quorum round (may be slightly stale). */
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  sortOrder?: "NONE" | "ASCEND" | "DESCEND";
  sortTarget?: "KEY" | "VERSION" | "CREATE" | "MOD" | "VALUE";
  /** Only keys created at or before this revision (0 or omitted: no bound). */
  maxCreateRevision?: number;
}

export interface RangeResult {
  header: ResponseHeader;
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

export interface PutOptions {
  /** Lease ID (decimal string or number) to attach the key to. */
  lease?: string | number;
  prevKv?: boolean;
  /** Keep the key's current value (the key must exist; the value given must be empty). */
  ignoreValue?: boolean;
  /** Keep the key's current lease (the key must exist; no lease may be given). */
  ignoreLease?: boolean;
}

export interface PutResult {
  header: ResponseHeader;
  prevKv: KeyValue | undefined;
}

export interface DeleteOptions {
  prefix?: boolean;
  rangeEnd?: Bytes;
  prevKv?: boolean;
}

export interface DeleteResult {
  header: ResponseHeader;
  deleted: number;
  prevKvs: KeyValue[];
}

export type Compare = {
  key: Bytes;
  rangeEnd?: Bytes;
  result: "EQUAL" | "GREATER" | "LESS" | "NOT_EQUAL";
} & (
  | { target: "VERSION"; version: number }
  | { target: "CREATE"; createRevision: number }
  | { target: "MOD"; modRevision: number }
  | { target: "VALUE"; value: Bytes }
  | { target: "LEASE"; lease: string | number }
);

export type TxnOp =
  | ({ range: Bytes } & RangeOptions)
  | ({ put: Bytes; value: Bytes } & PutOptions)
  | ({ deleteRange: Bytes } & DeleteOptions);

export type TxnOpResult =
  | { kind: "range"; result: RangeResult }
  | { kind: "put"; result: PutResult }
  | { kind: "delete"; result: DeleteResult };

export interface TxnResult {
  header: ResponseHeader;
  succeeded: boolean;
  responses: TxnOpResult[];
}

export interface LeaseGrantResult {
  header: ResponseHeader;
  id: string;
  ttlSeconds: number;
}

export interface LeaseTimeToLiveResult {
  header: ResponseHeader;
  id: string;
  /** Remaining seconds; -1 when the lease has expired or does not exist. */
  ttlSeconds: number;
  grantedTtlSeconds: number;
  keys: Buffer[];
}

export interface Member {
  id: string;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export interface MemberListResult {
  header: ResponseHeader;
  members: Member[];
}

export interface StatusResult {
  header: ResponseHeader;
  version: string;
  dbSize: number;
  leader: string;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  isLearner: boolean;
  errors: string[];
}

export class StoreClient {
  private readonly transport: Transport;

  constructor(private readonly options: TransportOptions) {
    this.transport = new Transport(options);
  }

  get endpoints(): string[] {
    return this.transport.endpointUrls;
  }

  async range(key: Bytes, options: RangeOptions = {}): Promise<RangeResult> {
    return decodeRange(await this.transport.call("/v3/kv/range", encodeRangeRequest(key, options), "read"));
  }

  /** The value of one key as UTF-8 text, or undefined when it does not exist. */
  async get(key: Bytes, options: Omit<RangeOptions, "prefix" | "rangeEnd"> = {}): Promise<string | undefined> {
    const { kvs } = await this.range(key, options);
    return kvs[0]?.value.toString("utf8");
  }

  async put(key: Bytes, value: Bytes, options: PutOptions = {}): Promise<PutResult> {
    return decodePut(await this.transport.call("/v3/kv/put", encodePutRequest(key, value, options), "write"));
  }

  async deleteRange(key: Bytes, options: DeleteOptions = {}): Promise<DeleteResult> {
    return decodeDelete(await this.transport.call("/v3/kv/deleterange", encodeDeleteRequest(key, options), "write"));
  }

  /** If every `compare` holds, run `success`, else `failure`; atomically, at one revision. */
  async txn(request: { compare?: Compare[]; success?: TxnOp[]; failure?: TxnOp[] }): Promise<TxnResult> {
    const compare = request.compare ?? [];
    const success = request.success ?? [];
    const failure = request.failure ?? [];
    assert.ok(success.length <= TXN_MAX_OPS && failure.length <= TXN_MAX_OPS, `a txn has at most ${TXN_MAX_OPS} ops`);
    const readOnly = [...success, ...failure].every((op) => "range" in op);
    const answer = await this.transport.call(
      "/v3/kv/txn",
      { compare: compare.map(encodeCompare), success: success.map(encodeOp), failure: failure.map(encodeOp) },
      readOnly ? "read" : "write",
    );
    const responses = Array.isArray(answer.responses) ? (answer.responses as WireObject[]) : [];
    return {
      header: decodeHeader(answer.header),
      succeeded: answer.succeeded === true,
      responses: responses.map(decodeOpResult),
    };
  }

  /** Discards history before `revision`; watches and reads at older revisions then fail with "compacted". */
  async compact(revision: number, physical = false): Promise<ResponseHeader> {
    const answer = await this.transport.call("/v3/kv/compaction", { revision: String(revision), physical }, "write");
    return decodeHeader(answer.header);
  }

  /**
   * Opens a watch stream. Iterate it (`for await`) to receive responses: the first has `created: true`; one with
   * `canceled: true` and `compactRevision > 0` means the start revision was compacted. The iteration throws
   * `StoreUnavailableError` when the connection drops; call `cancel()` to end it cleanly.
   */
  watch(key: Bytes, options: WatchOptions = {}): WatchStream {
    return new WatchStream(this.transport, key, options);
  }

  async leaseGrant(ttlSeconds: number, id?: string): Promise<LeaseGrantResult> {
    assert.ok(Number.isInteger(ttlSeconds) && ttlSeconds > 0, "a lease TTL is a positive whole number of seconds");
    const body: WireObject = { TTL: String(ttlSeconds) };
    if (id !== undefined) body.ID = id;
    const answer = await this.transport.call("/v3/lease/grant", body, "write");
    if (typeof answer.error === "string" && answer.error !== "") throw new Error(answer.error);
    return { header: decodeHeader(answer.header), id: decodeId(answer.ID), ttlSeconds: decodeInt(answer.TTL) };
  }

  async leaseRevoke(id: string | number): Promise<ResponseHeader> {
    return decodeHeader((await this.transport.call("/v3/lease/revoke", { ID: String(id) }, "write")).header);
  }

  /**
   * Renews a lease once. The gateway's keepalive is a stream; one request with one message gets one `result`
   * line back, which is all a periodic renewal needs. Returns the new TTL, 0 when the lease no longer exists.
   * `timeoutMs` (default: the client's request timeout) bounds each member's answer before the next is asked.
   */
  async leaseKeepAliveOnce(id: string | number, timeoutMs?: number): Promise<LeaseGrantResult> {
    const answer = await this.transport.call("/v3/lease/keepalive", { ID: String(id) }, "read", timeoutMs);
    // The stream body is one JSON line `{"result":{...}}`; `call` parsed it as a whole object.
    const result = (answer.result ?? answer) as WireObject;
    return { header: decodeHeader(result.header), id: decodeId(result.ID), ttlSeconds: decodeInt(result.TTL) };
  }

  async leaseTimeToLive(id: string | number, withKeys = false): Promise<LeaseTimeToLiveResult> {
    const answer = await this.transport.call("/v3/lease/timetolive", { ID: String(id), keys: withKeys }, "read");
    const keys = Array.isArray(answer.keys) ? (answer.keys as string[]).map((k) => Buffer.from(k, "base64")) : [];
    return {
      header: decodeHeader(answer.header),
      id: decodeId(answer.ID),
      ttlSeconds: decodeInt(answer.TTL),
      grantedTtlSeconds: decodeInt(answer.grantedTTL),
      keys,
    };
  }

  async leaseLeases(): Promise<{ header: ResponseHeader; ids: string[] }> {
    const answer = await this.transport.call("/v3/lease/leases", {}, "read");
    const leases = Array.isArray(answer.leases) ? (answer.leases as WireObject[]) : [];
    return { header: decodeHeader(answer.header), ids: leases.map((lease) => decodeId(lease.ID)) };
  }

  async memberList(): Promise<MemberListResult> {
    const answer = await this.transport.call("/v3/cluster/member/list", {}, "read");
    return { header: decodeHeader(answer.header), members: decodeMembers(answer.members) };
  }

  async memberAdd(peerUrls: string[], isLearner = false): Promise<MemberListResult & { member: Member }> {
    const answer = await this.transport.call("/v3/cluster/member/add", { peerURLs: peerUrls, isLearner }, "write");
    const [member] = decodeMembers([answer.member]);
    assert.ok(member !== undefined);
    return { header: decodeHeader(answer.header), member, members: decodeMembers(answer.members) };
  }

  async memberRemove(id: string): Promise<MemberListResult> {
    const answer = await this.transport.call("/v3/cluster/member/remove", { ID: id }, "write");
    return { header: decodeHeader(answer.header), members: decodeMembers(answer.members) };
  }

  async memberPromote(id: string): Promise<MemberListResult> {
    const answer = await this.transport.call("/v3/cluster/member/promote", { ID: id }, "write");
    return { header: decodeHeader(answer.header), members: decodeMembers(answer.members) };
  }

  async memberUpdate(id: string, peerUrls: string[]): Promise<MemberListResult> {
    const answer = await this.transport.call("/v3/cluster/member/update", { ID: id, peerURLs: peerUrls }, "write");
    return { header: decodeHeader(answer.header), members: decodeMembers(answer.members) };
  }

  /** Status of the member behind the first reachable endpoint (or of `endpoint` when given). */
  async status(endpoint?: string): Promise<StatusResult> {
    // One endpoint, with this client's timeouts and limits (the defaults would wait 5 s on a frozen member).
    const transport =
      endpoint === undefined ? this.transport : new Transport({ ...this.options, endpoints: [endpoint] });
    try {
      const answer = await transport.call("/v3/maintenance/status", {}, "read");
      return {
        header: decodeHeader(answer.header),
        version: String(answer.version ?? ""),
        dbSize: decodeInt(answer.dbSize),
        leader: decodeId(answer.leader),
        raftIndex: decodeInt(answer.raftIndex),
        raftTerm: decodeInt(answer.raftTerm),
        raftAppliedIndex: decodeInt(answer.raftAppliedIndex),
        isLearner: answer.isLearner === true,
        errors: Array.isArray(answer.errors) ? answer.errors.map(String) : [],
      };
    } finally {
      if (transport !== this.transport) await transport.close();
    }
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}

// Parses a stream-shaped answer line for callers holding raw text (kept here so tests can reach it).
export { parseAnswer };
