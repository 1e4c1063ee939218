// The peer protocol: HTTP/1.1 POSTs between replicas on their --listen-peer URLs. Every request names the cluster
// and the sender in headers, so a replica refuses traffic from another cluster (a mis-pointed --initial-cluster or an
// old member of a re-created cluster) before it parses anything. Raft messages travel in the binary frames of
// frame.ts (the paths say v2: a replica of the JSON era gets a 404, not bytes it would misread); peer RPCs and the
// probe are small JSON documents.
import { VigieError } from "../../errors.js";
import type { Message } from "../raft/types.js";
import { decodeFrameBody, encodeFrame, FRAME_PREFIX_BYTES } from "./frame.js";

/** One request whose body is a sequence of frames: for tools and tests; replicas use the stream below. */
export const MESSAGES_PATH = "/raft/v2/messages";
/** A long-lived stream of frames: a request to this path upgraded to STREAM_PROTOCOL (see PeerClient). */
export const STREAM_PATH = "/raft/v2/stream";
/** The `upgrade` token of a message stream. */
export const STREAM_PROTOCOL = "vigie-raft-frames";
/** One `snap` message in a frame, then the raw snapshot bytes. */
export const SNAPSHOT_PATH = "/raft/v2/snapshot";
export const RPC_PATH_PREFIX = "/raft/v1/rpc/";
export const PROBE_PATH = "/raft/v1/probe";

export const CLUSTER_HEADER = "x-vigie-cluster-id";
export const FROM_HEADER = "x-vigie-from";
export const TO_HEADER = "x-vigie-to";

/** Upper bound on one frame (the core caps one `app` at maxSizePerMsgBytes; a frame holds many), and on one
 * request of MESSAGES_PATH. A sender splits larger batches into several frames. */
export const MAX_FRAME_BYTES = 32 * 1024 * 1024;
/** Upper bound on the frame in front of a snapshot's bytes (one message without entries). */
const MAX_SNAPSHOT_HEADER_BYTES = 1024 * 1024;
/** Upper bound on a streamed snapshot (the whole key space and lease table). */
export const MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024;
/** Upper bound on a peer RPC body (lease keepalive, time-to-live...). */
export const MAX_RPC_BODY_BYTES = 1024 * 1024;
/** Chunk size of a streamed snapshot body. */
export const SNAPSHOT_CHUNK_BYTES = 256 * 1024;

/** A peer refused our request, or sent us one we refuse. */
export class PeerProtocolError extends VigieError {
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super("VIGIE_ERR_PEER_PROTOCOL", message);
    this.statusCode = statusCode;
  }
}

/** The peer server cannot bind its --listen-peer address (in use, not local...). */
export class PeerListenError extends VigieError {
  constructor(url: string, reason: string) {
    super("VIGIE_ERR_PEER_LISTEN", `--listen-peer ${url}: cannot listen (${reason})`);
  }
}

/**
 * Cuts a byte stream into frames and hands each frame's body to `onFrame` as soon as it is complete. A frame inside
 * one chunk is handed over without a copy; only one that spans chunks is joined (once, when complete). Throws a
 * PeerProtocolError (413) when a length prefix announces more than `maxFrameBytes`, before buffering any of it.
 */
export class FrameSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the frame at the head of `pending` needs in all (prefix included); 0 while its prefix is incomplete. */
  private needed = 0;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: (body: Buffer) => void,
  ) {}

  /** Bytes received that do not make a whole frame yet (a stream must not end with some). */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  push(chunk: Buffer): void {
    if (this.pendingBytes === 0) {
      this.consume(chunk);
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < (this.needed === 0 ? FRAME_PREFIX_BYTES : this.needed)) return;
    const joined = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.needed = 0;
    this.consume(joined);
  }

  private consume(buffer: Buffer): void {
    this.needed = 0;
    let offset = 0;
    while (buffer.length - offset >= FRAME_PREFIX_BYTES) {
      const bodyBytes = buffer.readUInt32LE(offset);
      if (bodyBytes > this.maxFrameBytes) {
        throw new PeerProtocolError(413, `peer frame of ${bodyBytes} bytes: over the limit of ${this.maxFrameBytes}`);
      }
      const end = offset + FRAME_PREFIX_BYTES + bodyBytes;
      if (end > buffer.length) {
        this.needed = end - offset;
        break;
      }
      this.onFrame(buffer.subarray(offset + FRAME_PREFIX_BYTES, end));
      offset = end;
    }
    if (offset < buffer.length) {
      this.pending = [buffer.subarray(offset)];
      this.pendingBytes = buffer.length - offset;
    }
  }
}

/**
 * A `snap` message is streamed: a frame holding the message with an empty `snapshot.data`, then the raw snapshot
 * bytes, so neither side needs a second copy of a large state machine.
 */
export function snapshotHeader(message: Message): Buffer {
  const snapshot = message.snapshot;
  if (snapshot === null) throw new PeerProtocolError(500, "snap message without a snapshot");
  return encodeFrame([{ ...message, snapshot: { metadata: snapshot.metadata, data: new Uint8Array(0) } }]);
}

/** The `snap` message of a snapshot request's body (see snapshotHeader), with the bytes after its frame as data. */
export function parseSnapshotBody(body: Buffer): Message {
  if (body.length < FRAME_PREFIX_BYTES) throw new PeerProtocolError(400, "snapshot body has no header frame");
  const headerBytes = body.readUInt32LE(0);
  if (headerBytes > MAX_SNAPSHOT_HEADER_BYTES || FRAME_PREFIX_BYTES + headerBytes > body.length) {
    throw new PeerProtocolError(400, `snapshot header frame of ${headerBytes} bytes in a body of ${body.length}`);
  }
  const dataAt = FRAME_PREFIX_BYTES + headerBytes;
  const messages = decodeFrameBody(body.subarray(FRAME_PREFIX_BYTES, dataAt));
  const message = messages[0];
  if (messages.length !== 1 || message === undefined || message.type !== "snap" || message.snapshot === null) {
    throw new PeerProtocolError(400, "a snapshot body's header frame must hold one snap message");
  }
  const data = new Uint8Array(body.buffer, body.byteOffset + dataAt, body.length - dataAt);
  return { ...message, snapshot: { metadata: message.snapshot.metadata, data } };
}
