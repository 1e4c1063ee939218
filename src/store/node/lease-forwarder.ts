// Lease operations that only the leader can answer (etcd 3.4: keepalive and time-to-live are leader-local, since
// only the leader keeps lease deadlines). A follower or learner forwards them to the leader over the peer transport.
import type { LeaseKeepAliveResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse } from "../mvcc/commands.js";
import { LeaseNotFoundError } from "../mvcc/errors.js";
import type { KvStore } from "../mvcc/kv-store.js";
import type { NodeId } from "../raft/types.js";
import type { PeerTransport } from "../transport/transport.js";
import { callLeader, NotLeaderHereError } from "./leader-rpc.js";

const KEEPALIVE = "leaseKeepAlive";
const TIME_TO_LIVE = "leaseTimeToLive";

export class LeaseForwarder {
  constructor(
    private readonly options: {
      kv: KvStore;
      transport: PeerTransport;
      isLeader(): boolean;
      leader(): NodeId;
      timeoutMs: number;
    },
  ) {}

  /** Serves forwarded calls (only meaningful while this replica leads; otherwise the caller retries). */
  serve(): void {
    const { transport, kv } = this.options;
    transport.handle(KEEPALIVE, async (body) => {
      this.requireLeader();
      return kv.keepAlive(Number((body as { ID?: unknown }).ID));
    });
    transport.handle(TIME_TO_LIVE, async (body) => {
      this.requireLeader();
      const request = body as { ID?: unknown; keys?: unknown };
      const response = kv.timeToLive({ ID: Number(request.ID), keys: request.keys === true });
      return { ...response, keys: response.keys.map((k) => Buffer.from(k).toString("base64")) };
    });
  }

  async keepAlive(id: number): Promise<LeaseKeepAliveResponse> {
    if (this.options.isLeader()) return this.options.kv.keepAlive(id);
    const response = (await this.forward(KEEPALIVE, { ID: id })) as LeaseKeepAliveResponse;
    return { header: { revision: this.options.kv.revision }, ID: response.ID, TTL: response.TTL };
  }

  async timeToLive(request: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    if (this.options.isLeader()) return this.options.kv.timeToLive(request);
    const response = (await this.forward(TIME_TO_LIVE, { ID: request.ID, keys: request.keys === true })) as Omit<
      LeaseTimeToLiveResponse,
      "keys"
    > & { keys: string[] };
    return {
      header: { revision: this.options.kv.revision },
      ID: response.ID,
      TTL: response.TTL,
      grantedTTL: response.grantedTTL,
      keys: response.keys.map((k) => new Uint8Array(Buffer.from(k, "base64"))),
    };
  }

  private requireLeader(): void {
    if (!this.options.isLeader()) throw new NotLeaderHereError();
  }

  /** Sends to the current leader; a lease the leader does not know is refused here the same way. */
  private forward(name: string, body: unknown): Promise<unknown> {
    return callLeader(
      { transport: this.options.transport, leader: () => this.options.leader(), timeoutMs: this.options.timeoutMs },
      name,
      body,
      (error) => (error.code === "VIGIE_ERR_LEASE_NOT_FOUND" ? new LeaseNotFoundError() : undefined),
    );
  }
}
