// The peer protocol: HTTP/1.1 POSTs between replicas on their --listen-peer URLs. Every request names the cluster
// and the sender in headers, so a replica refuses traffic from another cluster (a mis-pointed --initial-cluster or an
// old member of a re-created cluster) before it parses anything.
import { VigieError } from "../../errors.js";
import { messageFromJson, messageToJson } from "../raft/codec.js";
import type { Message } from "../raft/types.js";

/** One batch per request (a JSON array): for tools and tests; replicas use the stream below. */
export const MESSAGES_PATH = "/raft/v1/messages";
/** A long-lived POST whose body streams batches, one JSON array per line (see PeerClient). */
export const STREAM_PATH = "/raft/v1/stream";
export const SNAPSHOT_PATH = "/raft/v1/snapshot";
export const RPC_PATH_PREFIX = "/raft/v1/rpc/";
export const PROBE_PATH = "/raft/v1/probe";

export const CLUSTER_HEADER = "x-vigie-cluster-id";
export const FROM_HEADER = "x-vigie-from";
export const TO_HEADER = "x-vigie-to";

/** Upper bound on one batch request (the core caps one `app` at maxSizePerMsgBytes; a batch holds many). */
export const MAX_BATCH_BODY_BYTES = 32 * 1024 * 1024;
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

/** A batch of messages as one JSON array. */
export function encodeBatch(messages: readonly Message[]): string {
  const parts = new Array<string>(messages.length);
  for (let i = 0; i < messages.length; i++) parts[i] = JSON.stringify(messageToJson(messages[i]!));
  return `[${parts.join(",")}]`;
}

export function decodeBatch(text: string): Message[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new PeerProtocolError(400, `peer batch is not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(value)) throw new PeerProtocolError(400, "peer batch is not a JSON array");
  return value.map((m) => messageFromJson(m));
}

/**
 * A `snap` message is streamed: one line of JSON (the message with an empty `snapshot.data`), a newline, then the
 * raw snapshot bytes, so neither side needs a base64 copy of a large state machine.
 */
export function snapshotHeader(message: Message): Buffer {
  const snapshot = message.snapshot;
  if (snapshot === null) throw new PeerProtocolError(500, "snap message without a snapshot");
  const json = messageToJson({ ...message, snapshot: { metadata: snapshot.metadata, data: new Uint8Array(0) } });
  return Buffer.from(`${JSON.stringify(json)}\n`);
}

export function parseSnapshotHeader(line: string, data: Uint8Array): Message {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    throw new PeerProtocolError(400, `snapshot header is not JSON: ${(error as Error).message}`);
  }
  const message = messageFromJson(value);
  if (message.type !== "snap" || message.snapshot === null) throw new PeerProtocolError(400, "not a snap message");
  return { ...message, snapshot: { metadata: message.snapshot.metadata, data } };
}
