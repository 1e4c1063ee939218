// The receiving side of the peer protocol: an HTTP server on --listen-peer. It checks the cluster id and the
// addressee of every request before reading the body, answers at once (204) and hands the messages to the driver's
// inbox: the sender never waits for our fsync, only for the bytes to arrive.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "../../log.js";
import { RaftDecodeError } from "../raft/codec.js";
import type { Message, NodeId } from "../raft/types.js";
import { decodeFrameBody } from "./frame.js";
import {
  CLUSTER_HEADER,
  FROM_HEADER,
  FrameSplitter,
  MAX_FRAME_BYTES,
  MAX_RPC_BODY_BYTES,
  MAX_SNAPSHOT_BYTES,
  MESSAGES_PATH,
  PeerListenError,
  PeerProtocolError,
  PROBE_PATH,
  parseSnapshotBody,
  RPC_PATH_PREFIX,
  SNAPSHOT_PATH,
  STREAM_PATH,
  TO_HEADER,
} from "./protocol.js";

export type RpcHandler = (body: unknown) => Promise<unknown>;

export interface PeerServerOptions {
  clusterId: number;
  memberId: NodeId;
  logger: Logger;
  onMessages(messages: Message[]): void;
  onSnapshot(message: Message): void;
  /** False for a sender this replica must not listen to (a removed member). */
  acceptsFrom(peer: NodeId): boolean;
  rpc: ReadonlyMap<string, RpcHandler>;
  probe(): unknown;
}

export class PeerServer {
  private readonly server: Server;
  private refusedLoggedAtMs = 0;

  constructor(private readonly options: PeerServerOptions) {
    this.server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => this.fail(response, error));
    });
    this.server.keepAliveTimeout = 60_000;
    this.server.headersTimeout = 10_000;
    // Message streams live as long as the peers do: no whole-request deadline (Node's default is 5 minutes).
    this.server.requestTimeout = 0;
  }

  async listen(url: string): Promise<string> {
    const parsed = new URL(url);
    const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", (error: NodeJS.ErrnoException) =>
        reject(new PeerListenError(url, error.code ?? error.message)),
      );
      this.server.listen(Number(parsed.port || 2380), host, () => {
        this.server.removeAllListeners("error");
        resolve();
      });
    });
    const address = this.server.address();
    if (address === null || typeof address === "string") return url;
    const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return `${parsed.protocol}//${shown}:${address.port}`;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = request.url ?? "";
    if (request.method === "GET" && path === PROBE_PATH) return this.json(response, 200, this.options.probe());
    if (request.method !== "POST") throw new PeerProtocolError(405, `method ${request.method} not allowed`);
    const from = this.checkSender(request);
    if (path === MESSAGES_PATH) {
      const body = await readBody(request, MAX_FRAME_BYTES);
      const messages: Message[] = [];
      const splitter = new FrameSplitter(MAX_FRAME_BYTES, (frame) => messages.push(...decodeFrameBody(frame)));
      splitter.push(body);
      if (splitter.bufferedBytes > 0)
        throw new RaftDecodeError(`peer frame: ${splitter.bufferedBytes} bytes cut short`);
      this.refuseRemoved(from);
      response.writeHead(204).end();
      this.deliver(messages, from);
      return;
    }
    if (path === STREAM_PATH) {
      this.receiveStream(request, response, from);
      return;
    }
    if (path === SNAPSHOT_PATH) {
      const body = await readBody(request, MAX_SNAPSHOT_BYTES);
      const message = parseSnapshotBody(body);
      // The headers were checked before the (long) upload; the message itself must say the same, and the sender may
      // have been removed while it streamed.
      if (message.from !== from || message.to !== this.options.memberId) {
        throw new PeerProtocolError(
          400,
          `snapshot message from ${message.from} to ${message.to} sent as from ${from} to ${this.options.memberId}`,
        );
      }
      this.refuseRemoved(from);
      this.options.logger.info(
        { from, index: message.snapshot?.metadata.index, bytes: message.snapshot?.data.length },
        "snapshot received",
      );
      this.options.onSnapshot(message);
      response.writeHead(204).end();
      return;
    }
    if (path.startsWith(RPC_PATH_PREFIX)) {
      const handler = this.options.rpc.get(path.slice(RPC_PATH_PREFIX.length));
      if (handler === undefined) throw new PeerProtocolError(404, `unknown peer call ${path}`);
      const body = JSON.parse((await readBody(request, MAX_RPC_BODY_BYTES)).toString("utf8")) as unknown;
      this.json(response, 200, await handler(body));
      return;
    }
    throw new PeerProtocolError(404, `unknown peer path ${path}`);
  }

  /**
   * Delivers each frame of a message stream as soon as it is complete, on the stack of the socket's read (no
   * copy of a frame that arrived in one chunk). A bad frame ends the stream (the sender reconnects).
   */
  private receiveStream(request: IncomingMessage, response: ServerResponse, from: NodeId): void {
    const refuse = (error: unknown) => {
      const status = error instanceof PeerProtocolError ? error.statusCode : 400;
      this.options.logger.warn({ from, err: (error as Error).message }, "refused a peer stream; closing it");
      if (!response.headersSent) {
        this.json(response, status, { error: { code: errorCode(error), message: (error as Error).message } });
      }
      request.destroy();
    };
    const splitter = new FrameSplitter(MAX_FRAME_BYTES, (frame) => {
      const messages = decodeFrameBody(frame);
      // A stream lives as long as its sender: a member removed after it opened must not go on voting.
      this.refuseRemoved(from);
      this.deliver(messages, from);
    });
    request.on("data", (chunk: Buffer) => {
      if (request.destroyed) return;
      try {
        splitter.push(chunk);
      } catch (error) {
        refuse(error);
      }
    });
    request.on("end", () => {
      if (splitter.bufferedBytes > 0) refuse(new RaftDecodeError(`peer frame: stream ended inside a frame`));
      else if (!response.headersSent) response.writeHead(204).end();
    });
  }

  /** Hands over the messages addressed to this member by the sender the headers named (others are dropped). */
  private deliver(messages: Message[], from: NodeId): void {
    const memberId = this.options.memberId;
    let keep = true;
    for (const m of messages) if (m.to !== memberId || m.from !== from) keep = false;
    if (messages.length > 0) {
      this.options.onMessages(keep ? messages : messages.filter((m) => m.to === memberId && m.from === from));
    }
  }

  /** Refuses another cluster's traffic (logged, at most once a second) and messages for another member. */
  private checkSender(request: IncomingMessage): NodeId {
    const clusterId = Number(request.headers[CLUSTER_HEADER]);
    const from = Number(request.headers[FROM_HEADER]);
    const to = Number(request.headers[TO_HEADER]);
    if (clusterId !== this.options.clusterId) {
      const now = Date.now();
      if (now - this.refusedLoggedAtMs > 1000) {
        this.refusedLoggedAtMs = now;
        this.options.logger.warn(
          { remote: request.socket.remoteAddress, theirClusterId: request.headers[CLUSTER_HEADER], from },
          "refused a peer request from another cluster",
        );
      }
      throw new PeerProtocolError(
        403,
        `cluster id mismatch: this member belongs to cluster ${this.options.clusterId}, the request to ${String(request.headers[CLUSTER_HEADER])}`,
      );
    }
    if (to !== this.options.memberId) {
      throw new PeerProtocolError(
        404,
        `this is member ${this.options.memberId}, not ${String(request.headers[TO_HEADER])}`,
      );
    }
    if (!Number.isSafeInteger(from) || from <= 0) {
      throw new PeerProtocolError(
        403,
        `member ${String(request.headers[FROM_HEADER])} is not a member of this cluster`,
      );
    }
    this.refuseRemoved(from);
    return from;
  }

  /** Checked again for every batch a request carries: membership may change while a request or stream is open. */
  private refuseRemoved(from: NodeId): void {
    if (!this.options.acceptsFrom(from)) {
      throw new PeerProtocolError(403, `member ${from} is not a member of this cluster`);
    }
  }

  private json(response: ServerResponse, status: number, value: unknown): void {
    const body = JSON.stringify(value);
    response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    response.end(body);
  }

  private fail(response: ServerResponse, error: unknown): void {
    const status = error instanceof PeerProtocolError ? error.statusCode : error instanceof RaftDecodeError ? 400 : 500;
    if (status >= 500) this.options.logger.warn({ err: (error as Error).message }, "peer request failed");
    else if (error instanceof RaftDecodeError)
      this.options.logger.warn({ err: error.message }, "refused a peer request");
    if (response.headersSent) {
      response.destroy();
      return;
    }
    this.json(response, status, { error: { code: errorCode(error), message: (error as Error).message } });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" ? code : "VIGIE_ERR_PEER";
}

async function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(request.headers["content-length"] ?? "0");
  if (declared > maxBytes) throw new PeerProtocolError(413, `peer request of ${declared} bytes over ${maxBytes}`);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request) {
    total += (chunk as Buffer).length;
    if (total > maxBytes) throw new PeerProtocolError(413, `peer request over ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}
