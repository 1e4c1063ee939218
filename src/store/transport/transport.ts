// The Raft driver's view of the network: `send(messages)` and a callback for what arrives. It owns the peer server
// and one PeerClient per known peer (added and removed as the member table changes).
import type { Logger } from "../../log.js";
import type { Message, NodeId } from "../raft/types.js";
import { PeerClient } from "./peer-client.js";
import { PeerServer, type RpcHandler } from "./peer-server.js";
import { RPC_PATH_PREFIX } from "./protocol.js";

export interface TransportOptions {
  clusterId: number;
  memberId: NodeId;
  logger: Logger;
  /** Messages received from peers, in arrival order (the driver steps them into the core). */
  onMessages(messages: Message[]): void;
  onUnreachable(peer: NodeId): void;
  onSnapshotResult(peer: NodeId, ok: boolean): void;
  acceptsFrom(peer: NodeId): boolean;
  probe(): unknown;
  requestTimeoutMs?: number;
  snapshotTimeoutMs?: number;
}

export class PeerTransport {
  private readonly peers = new Map<NodeId, PeerClient>();
  private readonly rpc = new Map<string, RpcHandler>();
  private readonly server: PeerServer;
  private readonly logger: Logger;

  constructor(private readonly options: TransportOptions) {
    this.logger = options.logger;
    this.server = new PeerServer({
      clusterId: options.clusterId,
      memberId: options.memberId,
      logger: options.logger,
      onMessages: options.onMessages,
      onSnapshot: (message) => options.onMessages([message]),
      acceptsFrom: options.acceptsFrom,
      rpc: this.rpc,
      probe: options.probe,
    });
  }

  /** Starts the peer server; resolves with the URL it listens on (useful with port 0 in tests). */
  listen(url: string): Promise<string> {
    return this.server.listen(url);
  }

  /** Serves a leader-local operation to peers at `/raft/v1/rpc/<name>`. */
  handle(name: string, handler: RpcHandler): void {
    this.rpc.set(name, handler);
  }

  /** Adds or re-points a peer. The same URL keeps the existing connection pool. */
  setPeer(id: NodeId, peerUrl: string): void {
    if (id === this.options.memberId) return;
    const current = this.peers.get(id);
    if (current?.url === peerUrl) return;
    if (current) void current.close();
    this.peers.set(
      id,
      new PeerClient({
        clusterId: this.options.clusterId,
        fromId: this.options.memberId,
        peerId: id,
        peerUrl,
        logger: this.logger,
        onUnreachable: this.options.onUnreachable,
        onSnapshotResult: this.options.onSnapshotResult,
        maxQueuedMessages: 16_384,
        requestTimeoutMs: this.options.requestTimeoutMs ?? 2000,
        snapshotTimeoutMs: this.options.snapshotTimeoutMs ?? 60_000,
        backoffMinMs: 25,
        backoffMaxMs: 500,
      }),
    );
  }

  removePeer(id: NodeId): void {
    const peer = this.peers.get(id);
    if (peer === undefined) return;
    this.peers.delete(id);
    void peer.close();
  }

  hasPeer(id: NodeId): boolean {
    return this.peers.has(id);
  }

  /** Best effort: a message to an unknown peer is dropped and reported unreachable. */
  send(messages: readonly Message[]): void {
    const touched = new Set<PeerClient>();
    for (const message of messages) {
      const peer = this.peers.get(message.to);
      if (peer === undefined) {
        this.options.onUnreachable(message.to);
        continue;
      }
      peer.enqueue(message);
      touched.add(peer);
    }
    for (const peer of touched) peer.flush();
  }

  /** Calls a peer's RPC handler (see `handle`). */
  call(id: NodeId, name: string, body: unknown, timeoutMs: number): Promise<unknown> {
    const peer = this.peers.get(id);
    if (peer === undefined) return Promise.reject(new Error(`no address known for member ${id}`));
    return peer.call(`${RPC_PATH_PREFIX}${name}`, body, timeoutMs);
  }

  droppedMessages(): number {
    let n = 0;
    for (const peer of this.peers.values()) n += peer.droppedMessages;
    return n;
  }

  async close(): Promise<void> {
    await this.server.close();
    await Promise.all([...this.peers.values()].map((p) => p.close()));
    this.peers.clear();
  }
}
