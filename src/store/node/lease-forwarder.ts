// Lease operations that only the leader can answer (etcd 3.4: keepalive and time-to-live are leader-local, since
// only the leader keeps lease deadlines). A follower or learner forwards them to the leader over the peer transport.
import type { LeaseKeepAliveResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse } from "../mvcc/commands.js";
import { LeaseNotFoundError } from "../mvcc/errors.js";
import type { KvStore } from "../mvcc/kv-store.js";
import type { NodeId } from "../raft/types.js";
import type { PeerTransport } from "../transport/transport.js";
import { LeaderChangedError } from "./errors.js";
import { callLeader, LeaderIsHereError, NotLeaderHereError } from "./leader-rpc.js";

const KEEPALIVE = "leaseKeepAlive";
const TIME_TO_LIVE = "leaseTimeToLive";
const LEADER_CHECK_PAUSE_MS = 25;

export class LeaseForwarder {
  constructor(
    private readonly options: {
      kv: KvStore;
      transport: PeerTransport;
      /** This member's id (it may become the leader while a call waits for the old one). */
      self: NodeId;
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
    return await this.onLeader(
      () => this.options.kv.keepAlive(id),
      async (remainingMs) => {
        const response = (await this.forward(KEEPALIVE, { ID: id }, remainingMs)) as LeaseKeepAliveResponse;
        return { header: { revision: this.options.kv.revision }, ID: response.ID, TTL: response.TTL };
      },
    );
  }

  async timeToLive(request: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    return await this.onLeader(
      () => this.options.kv.timeToLive(request),
      async (remainingMs) => {
        const body = { ID: request.ID, keys: request.keys === true };
        const response = (await this.forward(TIME_TO_LIVE, body, remainingMs)) as Omit<
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
      },
    );
  }

  /**
   * Whether this member answers lease calls itself: it leads AND its lease table keeps time. A new leader starts
   * keeping time only once it applied the earlier terms' entries (ReplicaNode); until then callers wait, as etcd's
   * do for a lessor that is not yet promoted, instead of hearing "lease not found" for a lease granted just before.
   */
  private serving(): boolean {
    return this.options.isLeader() && this.options.kv.leases.isKeepingTime;
  }

  private requireLeader(): void {
    if (!this.serving()) throw new NotLeaderHereError();
  }

  /**
   * `local()` when this member leads, else `remote()` on the leader; when this member is elected while waiting for
   * the old leader (its own election ends the wait), it serves the call itself after all.
   */
  private async onLeader<T>(local: () => T, remote: (remainingMs: number) => Promise<T>): Promise<T> {
    const deadlineMs = Date.now() + this.options.timeoutMs;
    for (;;) {
      if (this.serving()) return local();
      try {
        return await remote(Math.max(1, deadlineMs - Date.now()));
      } catch (error) {
        if (!(error instanceof LeaderIsHereError)) throw error;
        if (Date.now() >= deadlineMs) throw new LeaderChangedError();
        // Elected, but not serving yet (the role change has not arrived, or earlier terms are still being applied).
        if (!this.serving()) await new Promise((r) => setTimeout(r, LEADER_CHECK_PAUSE_MS));
      }
    }
  }

  /** Sends to the current leader; a lease the leader does not know is refused here the same way. */
  private forward(name: string, body: unknown, timeoutMs: number): Promise<unknown> {
    return callLeader(
      {
        transport: this.options.transport,
        leader: () => this.options.leader(),
        self: this.options.self,
        timeoutMs,
        // Renewing or reading a lease twice is harmless: never wait on a leader that was replaced.
        retryWhenLeaderChanges: true,
      },
      name,
      body,
      (error) => (error.code === "VIGIE_ERR_LEASE_NOT_FOUND" ? new LeaseNotFoundError() : undefined),
    );
  }
}
