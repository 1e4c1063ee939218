// The receiving side of the peer protocol: an HTTP server on --listen-peer. It checks the cluster id and the
// addressee of every request before reading the body (or accepting a stream), answers at once (204) and hands the
// messages to the driver's inbox: the sender never waits for our fsync, only for the bytes to arrive.
import { createServer, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
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
  STREAM_PROTOCOL,
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
  /** Accepted message streams: upgraded sockets the HTTP server no longer closes for us. */
  private readonly streams = new Set<Duplex>();

  constructor(private readonly options: PeerServerOptions) {
    this.server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => this.fail(response, error));
    });
    this.server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.acceptStream(request, socket, head),
    );
    this.server.keepAliveTimeout = 60_000;
    this.server.headersTimeout = 10_000;
    // A large snapshot may upload for longer than Node's default whole-request deadline (5 minutes); its sender
    // bounds it (snapshotTimeoutMs). Message streams are upgraded connections, outside these timeouts.
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
      // A loop, not push(...): a frame may hold more messages than a call takes arguments.
      const splitter = new FrameSplitter(MAX_FRAME_BYTES, (frame) => {
        for (const m of decodeFrameBody(frame)) messages.push(m);
      });
      splitter.push(body);
      if (splitter.bufferedBytes > 0)
        throw new RaftDecodeError(`peer frame: ${splitter.bufferedBytes} bytes cut short`);
      this.refuseRemoved(from);
      response.writeHead(204).end();
      this.deliver(messages, from);
      return;
    }
    if (path === STREAM_PATH)
      throw new PeerProtocolError(426, `${STREAM_PATH} is a stream: upgrade to ${STREAM_PROTOCOL}`);
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
   * A message stream: the request's headers are checked as any request's, then the connection becomes a plain byte
   * stream of frames. Each frame is delivered as soon as it is complete, on the stack of the socket's read. A bad
   * frame, or a sender removed meanwhile, closes the stream (the sender reconnects, or is refused at once).
   */
  private acceptStream(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", (error: Error) => this.options.logger.debug({ err: error.message }, "peer stream error"));
    let from: NodeId;
    try {
      if (request.url !== STREAM_PATH || request.headers.upgrade !== STREAM_PROTOCOL) {
        throw new PeerProtocolError(404, `no stream ${request.url ?? ""} (upgrade ${request.headers.upgrade ?? ""})`);
      }
      from = this.checkSender(request);
    } catch (error) {
      const status = error instanceof PeerProtocolError ? error.statusCode : 400;
      const body = JSON.stringify({ error: { code: errorCode(error), message: (error as Error).message } });
      // Destroyed once the answer is out: an upgrade's socket is half-open-capable and nobody reads it here.
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\ncontent-type: application/json\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        () => socket.destroy(),
      );
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${STREAM_PROTOCOL}\r\n\r\n`);
    this.streams.add(socket);
    socket.once("close", () => this.streams.delete(socket));
    // The sender ended its side (it is closing): end ours too.
    socket.once("end", () => socket.end());
    const splitter = new FrameSplitter(MAX_FRAME_BYTES, (frame) => {
      const messages = decodeFrameBody(frame);
      // A stream lives as long as its sender: a member removed after it opened must not go on voting.
      this.refuseRemoved(from);
      this.deliver(messages, from);
    });
    const receive = (chunk: Buffer) => {
      if (socket.destroyed) return;
      try {
        splitter.push(chunk);
      } catch (error) {
        this.options.logger.warn({ from, err: (error as Error).message }, "refused a peer stream; closing it");
        socket.destroy();
      }
    };
    if (head.length > 0) receive(head);
    socket.on("data", receive);
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
    for (const stream of this.streams) stream.destroy();
    this.streams.clear();
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
