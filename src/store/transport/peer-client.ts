// One remote peer as seen by the sender: a bounded queue of outgoing messages and one undici Pool. Messages queued
// while a request is in flight go out together in the next request (natural batching: the busier the leader, the
// bigger the batches), and one request at a time keeps them in order, which is what Raft's pipelining wants.
import { Readable } from "node:stream";
import { Pool } from "undici";
import type { Logger } from "../../log.js";
import type { Message, NodeId } from "../raft/types.js";
import {
  CLUSTER_HEADER,
  encodeBatch,
  FROM_HEADER,
  MESSAGES_PATH,
  PeerProtocolError,
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_PATH,
  snapshotHeader,
  TO_HEADER,
} from "./protocol.js";

export interface PeerClientOptions {
  clusterId: number;
  fromId: NodeId;
  peerId: NodeId;
  peerUrl: string;
  logger: Logger;
  /** The peer could not be reached: the core falls back to probing it. */
  onUnreachable(peer: NodeId): void;
  /** A snapshot was (or was not) delivered. */
  onSnapshotResult(peer: NodeId, ok: boolean): void;
  maxQueuedMessages: number;
  maxBatchMessages: number;
  requestTimeoutMs: number;
  snapshotTimeoutMs: number;
  backoffMinMs: number;
  backoffMaxMs: number;
}

export class PeerClient {
  private readonly pool: Pool;
  private queue: Message[] = [];
  private sending = false;
  private closed = false;
  private backoffMs = 0;
  private retryAtMs = 0;
  private snapshotInFlight = false;
  droppedMessages = 0;

  constructor(private readonly options: PeerClientOptions) {
    this.pool = new Pool(options.peerUrl, {
      connections: 2,
      pipelining: 1,
      connectTimeout: Math.min(options.requestTimeoutMs, 1000),
      keepAliveTimeout: 30_000,
      headersTimeout: options.requestTimeoutMs,
      bodyTimeout: options.requestTimeoutMs,
    });
  }

  get url(): string {
    return this.options.peerUrl;
  }

  /** Queues a message; drops it (Raft retransmits) when the peer is backing off or the queue is full. */
  enqueue(message: Message): void {
    if (this.closed) return;
    if (message.type === "snap") {
      this.sendSnapshot(message);
      return;
    }
    if (Date.now() < this.retryAtMs || this.queue.length >= this.options.maxQueuedMessages) {
      this.droppedMessages++;
      return;
    }
    this.queue.push(message);
    if (!this.sending) this.flush();
  }

  private flush(): void {
    if (this.closed || this.queue.length === 0) return;
    const max = this.options.maxBatchMessages;
    const batch = this.queue.length <= max ? this.queue : this.queue.slice(0, max);
    this.queue = this.queue.length <= max ? [] : this.queue.slice(max);
    this.sending = true;
    this.post(batch).then(
      () => {
        this.backoffMs = 0;
        this.sending = false;
        this.flush();
      },
      (error: unknown) => {
        this.sending = false;
        this.fail(error);
      },
    );
  }

  private async post(batch: readonly Message[]): Promise<void> {
    const response = await this.pool.request({
      path: MESSAGES_PATH,
      method: "POST",
      headers: this.headers({ "content-type": "application/json" }),
      body: encodeBatch(batch),
      headersTimeout: this.options.requestTimeoutMs,
      bodyTimeout: this.options.requestTimeoutMs,
    });
    const text = await response.body.text();
    if (response.statusCode !== 204 && response.statusCode !== 200) {
      throw new PeerProtocolError(response.statusCode, `peer ${this.options.peerUrl} refused messages: ${text}`);
    }
  }

  private fail(error: unknown): void {
    this.droppedMessages += this.queue.length;
    this.queue = [];
    this.backoffMs = Math.min(this.options.backoffMaxMs, Math.max(this.options.backoffMinMs, this.backoffMs * 2));
    this.retryAtMs = Date.now() + this.backoffMs;
    if (this.closed) return;
    this.options.logger.debug(
      { peer: this.options.peerUrl, backoffMs: this.backoffMs, err: (error as Error).message },
      "peer unreachable",
    );
    this.options.onUnreachable(this.options.peerId);
  }

  /** Streams a snapshot in chunks; one at a time per peer (the core waits for reportSnapshot anyway). */
  private sendSnapshot(message: Message): void {
    if (this.snapshotInFlight) return;
    this.snapshotInFlight = true;
    const data = message.snapshot?.data ?? new Uint8Array(0);
    const header = snapshotHeader(message);
    const chunks = function* () {
      yield header;
      for (let offset = 0; offset < data.length; offset += SNAPSHOT_CHUNK_BYTES) {
        yield Buffer.from(data.buffer, data.byteOffset + offset, Math.min(SNAPSHOT_CHUNK_BYTES, data.length - offset));
      }
    };
    this.pool
      .request({
        path: SNAPSHOT_PATH,
        method: "POST",
        headers: this.headers({
          "content-type": "application/octet-stream",
          "content-length": String(header.length + data.length),
        }),
        body: Readable.from(chunks()),
        headersTimeout: this.options.snapshotTimeoutMs,
        bodyTimeout: this.options.snapshotTimeoutMs,
      })
      .then(async (response) => {
        const text = await response.body.text();
        if (response.statusCode !== 204) throw new PeerProtocolError(response.statusCode, text);
      })
      .then(
        () => {
          this.snapshotInFlight = false;
          this.options.logger.info(
            { peer: this.options.peerUrl, index: message.snapshot?.metadata.index, bytes: data.length },
            "snapshot sent",
          );
          this.options.onSnapshotResult(this.options.peerId, true);
        },
        (error: unknown) => {
          this.snapshotInFlight = false;
          this.options.logger.warn({ peer: this.options.peerUrl, err: (error as Error).message }, "snapshot failed");
          this.options.onSnapshotResult(this.options.peerId, false);
          this.options.onUnreachable(this.options.peerId);
        },
      );
  }

  /** A JSON request to the peer (leader-local operations such as lease keepalive). */
  async call(path: string, body: unknown, timeoutMs: number): Promise<unknown> {
    const response = await this.pool.request({
      path,
      method: "POST",
      headers: this.headers({ "content-type": "application/json" }),
      body: JSON.stringify(body),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await response.body.text();
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new PeerProtocolError(response.statusCode, `peer ${this.options.peerUrl} answered ${text.slice(0, 200)}`);
    }
    if (response.statusCode !== 200) {
      const error = (value as { error?: { code?: string; message?: string } }).error;
      throw new RemotePeerError(error?.code ?? "VIGIE_ERR_PEER", error?.message ?? text.slice(0, 200));
    }
    return value;
  }

  private headers(extra: Record<string, string>): Record<string, string> {
    return {
      ...extra,
      [CLUSTER_HEADER]: String(this.options.clusterId),
      [FROM_HEADER]: String(this.options.fromId),
      [TO_HEADER]: String(this.options.peerId),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue = [];
    await this.pool.destroy();
  }
}

/** An error the peer reported for an RPC; `code` is the peer's error code (e.g. VIGIE_ERR_LEASE_NOT_FOUND). */
export class RemotePeerError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
