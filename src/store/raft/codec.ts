// Encodings at the core's edges: conf changes inside entries (stored in the log: this format is on disk), and
// messages as JSON (bytes as base64, since JSON has no byte strings) for tools and tests. Replicas exchange messages
// in the binary frames of src/store/transport/frame.ts. Decoding validates the shape and throws on bad input.
import { VigieError } from "../../errors.js";
import {
  type ConfChange,
  type ConfChangeType,
  type Entry,
  MESSAGE_TYPES,
  type Message,
  type MessageType,
  type Snapshot,
} from "./types.js";

/** Raised for a malformed message or conf change coming from outside. */
export class RaftDecodeError extends VigieError {
  constructor(message: string) {
    super("VIGIE_ERR_RAFT_DECODE", `raft: cannot decode ${message}`);
  }
}

const CONF_CHANGE_TYPES: readonly ConfChangeType[] = [
  "addVoter",
  "addLearner",
  "promoteLearner",
  "removeNode",
  "updateNode",
];
const MESSAGE_TYPE_NAMES: ReadonlySet<string> = new Set<string>(MESSAGE_TYPES);

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const json = { type: cc.type, nodeId: cc.nodeId, context: Buffer.from(cc.context).toString("base64") };
  return textEncoder.encode(JSON.stringify(json));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  let value: unknown;
  try {
    value = JSON.parse(textDecoder.decode(data));
  } catch (error) {
    throw new RaftDecodeError(`conf change: ${(error as Error).message}`);
  }
  const v = value as { type?: unknown; nodeId?: unknown; context?: unknown };
  if (!CONF_CHANGE_TYPES.includes(v.type as ConfChangeType))
    throw new RaftDecodeError(`conf change type ${String(v.type)}`);
  if (!isNodeId(v.nodeId)) throw new RaftDecodeError(`conf change nodeId ${String(v.nodeId)}`);
  if (typeof v.context !== "string") throw new RaftDecodeError("conf change context");
  return { type: v.type as ConfChangeType, nodeId: v.nodeId, context: base64ToBytes(v.context) };
}

function isNodeId(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v > 0;
}

function isIndex(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function base64ToBytes(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "base64"));
}

function bytesToBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

function entryToJson(e: Entry): unknown {
  return { term: e.term, index: e.index, type: e.type, data: bytesToBase64(e.data) };
}

function entryFromJson(v: unknown, where: string): Entry {
  const e = v as { term?: unknown; index?: unknown; type?: unknown; data?: unknown };
  if (!isIndex(e.term) || !isIndex(e.index)) throw new RaftDecodeError(`${where}: term/index`);
  if (e.type !== "normal" && e.type !== "confChange") throw new RaftDecodeError(`${where}: type ${String(e.type)}`);
  if (typeof e.data !== "string") throw new RaftDecodeError(`${where}: data`);
  return { term: e.term, index: e.index, type: e.type, data: base64ToBytes(e.data) };
}

/** A JSON-ready object for a message (bytes become base64 strings). */
export function messageToJson(m: Message): unknown {
  const snapshot =
    m.snapshot === null
      ? null
      : {
          metadata: m.snapshot.metadata,
          data: bytesToBase64(m.snapshot.data),
        };
  return { ...m, entries: m.entries.map(entryToJson), snapshot };
}

/** Validates and converts a parsed JSON value back into a message; throws RaftDecodeError naming the field. */
export function messageFromJson(value: unknown): Message {
  if (typeof value !== "object" || value === null) throw new RaftDecodeError("message: not an object");
  const m = value as Record<string, unknown>;
  if (typeof m.type !== "string" || !MESSAGE_TYPE_NAMES.has(m.type))
    throw new RaftDecodeError(`message type ${String(m.type)}`);
  for (const key of ["from", "to"] as const) if (!isNodeId(m[key])) throw new RaftDecodeError(`message.${key}`);
  for (const key of ["term", "logTerm", "index", "commit", "rejectHint"] as const) {
    if (!isIndex(m[key])) throw new RaftDecodeError(`message.${key}`);
  }
  if (typeof m.reject !== "boolean") throw new RaftDecodeError("message.reject");
  if (typeof m.commitNotice !== "boolean") throw new RaftDecodeError("message.commitNotice");
  if (typeof m.context !== "string") throw new RaftDecodeError("message.context");
  if (!Array.isArray(m.entries)) throw new RaftDecodeError("message.entries");
  const entries = m.entries.map((e, i) => entryFromJson(e, `message.entries[${i}]`));
  return {
    type: m.type as MessageType,
    from: m.from as number,
    to: m.to as number,
    term: m.term as number,
    logTerm: m.logTerm as number,
    index: m.index as number,
    entries,
    commit: m.commit as number,
    reject: m.reject,
    rejectHint: m.rejectHint as number,
    context: m.context,
    snapshot: m.snapshot === null || m.snapshot === undefined ? null : snapshotFromJson(m.snapshot),
    commitNotice: m.commitNotice,
  };
}

function snapshotFromJson(value: unknown): Snapshot {
  const s = value as {
    metadata?: { index?: unknown; term?: unknown; confState?: { voters?: unknown; learners?: unknown } };
    data?: unknown;
  };
  const md = s.metadata;
  if (!md || !isIndex(md.index) || !isIndex(md.term)) throw new RaftDecodeError("snapshot.metadata");
  const voters = md.confState?.voters;
  const learners = md.confState?.learners;
  if (!Array.isArray(voters) || !voters.every(isNodeId))
    throw new RaftDecodeError("snapshot.metadata.confState.voters");
  if (!Array.isArray(learners) || !learners.every(isNodeId))
    throw new RaftDecodeError("snapshot.metadata.confState.learners");
  if (typeof s.data !== "string") throw new RaftDecodeError("snapshot.data");
  return { metadata: { index: md.index, term: md.term, confState: { voters, learners } }, data: base64ToBytes(s.data) };
}
