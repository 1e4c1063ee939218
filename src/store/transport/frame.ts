// The peer wire format: Raft messages in length-prefixed binary frames. It replaced JSON lines whose entry bytes
// travelled as base64: a 16-entry append cost ~35 µs to encode and decode, and every put crosses two such hops per
// follower. Here entry data is copied as raw bytes and every other field has a fixed place.
//
// All integers little-endian. A u64 is written as its low then high 32-bit halves and must be a safe integer.
//   frame    = u32 bodyBytes, body                              (bodyBytes <= the receiver's limit)
//   body     = u8 version (FRAME_VERSION), u32 messageCount, message * messageCount
//   message  = u8 type, u8 flags (1 = reject, 2 = has snapshot, 4 = commit notice),
//              u64 from, u64 to, u64 term, u64 logTerm, u64 index, u64 commit, u64 rejectHint,
//              u32 contextBytes, context (UTF-8), u32 entryCount, entry * entryCount, [snapshot]
//   entry    = u8 type (0 normal, 1 confChange), u64 term, u64 index, u32 dataBytes, data
//   snapshot = u64 index, u64 term, u32 voterCount, u64 * voterCount, u32 learnerCount, u64 * learnerCount,
//              u32 dataBytes, data
// Decoding checks every length against the bytes actually there (a count can never make it allocate more than
// the frame holds), every enum, id and index; anything else is a RaftDecodeError naming the field.
import assert from "node:assert";
import { RaftDecodeError } from "../raft/codec.js";
import {
  type Entry,
  type EntryType,
  MESSAGE_TYPES,
  type Message,
  type MessageType,
  type NodeId,
  type Snapshot,
} from "../raft/types.js";

export const FRAME_VERSION = 1;
/** The u32 body length in front of every frame. */
export const FRAME_PREFIX_BYTES = 4;

const MESSAGE_TYPE_CODES = new Map<MessageType, number>(MESSAGE_TYPES.map((type, code) => [type, code]));
const ENTRY_TYPES: readonly EntryType[] = ["normal", "confChange"];

const FLAG_REJECT = 1;
const FLAG_SNAPSHOT = 2;
const FLAG_COMMIT_NOTICE = 4;
const BODY_HEADER_BYTES = 1 + 4;
const MESSAGE_FIXED_BYTES = 1 + 1 + 7 * 8 + 4 + 4;
const ENTRY_FIXED_BYTES = 1 + 8 + 8 + 4;
const SNAPSHOT_FIXED_BYTES = 8 + 8 + 4 + 4 + 4;
const TWO_POW_32 = 0x1_0000_0000;
/** The high half of a safe integer (2^53 - 1) is at most this. */
const MAX_SAFE_HIGH = 0x1f_ffff;

const EMPTY = new Uint8Array(0);
const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

function contextBytes(context: string): number {
  return context.length === 0 ? 0 : Buffer.byteLength(context, "utf8");
}

function messageBytes(m: Message): number {
  let size = MESSAGE_FIXED_BYTES + contextBytes(m.context);
  for (const e of m.entries) size += ENTRY_FIXED_BYTES + e.data.length;
  const s = m.snapshot;
  if (s !== null) {
    const { voters, learners } = s.metadata.confState;
    size += SNAPSHOT_FIXED_BYTES + 8 * (voters.length + learners.length) + s.data.length;
  }
  return size;
}

/** Writes into a buffer sized exactly beforehand (see messageBytes). */
class Writer {
  offset = 0;
  constructor(readonly buffer: Buffer) {}

  u8(value: number): void {
    this.buffer[this.offset++] = value;
  }

  u32(value: number): void {
    const b = this.buffer;
    const o = this.offset;
    b[o] = value;
    b[o + 1] = value >>> 8;
    b[o + 2] = value >>> 16;
    b[o + 3] = value >>> 24;
    this.offset = o + 4;
  }

  u64(value: number): void {
    this.u32(value >>> 0);
    this.u32(Math.floor(value / TWO_POW_32));
  }

  bytes(data: Uint8Array): void {
    this.u32(data.length);
    this.buffer.set(data, this.offset);
    this.offset += data.length;
  }

  message(m: Message): void {
    const code = MESSAGE_TYPE_CODES.get(m.type);
    if (code === undefined) assert.fail(`raft message type ${m.type} has no wire code`);
    this.u8(code);
    this.u8(
      (m.reject ? FLAG_REJECT : 0) |
        (m.snapshot !== null ? FLAG_SNAPSHOT : 0) |
        (m.commitNotice ? FLAG_COMMIT_NOTICE : 0),
    );
    this.u64(m.from);
    this.u64(m.to);
    this.u64(m.term);
    this.u64(m.logTerm);
    this.u64(m.index);
    this.u64(m.commit);
    this.u64(m.rejectHint);
    if (m.context.length === 0) {
      this.u32(0);
    } else {
      const start = this.offset + 4;
      const written = this.buffer.write(m.context, start, "utf8");
      this.u32(written);
      this.offset = start + written;
    }
    this.u32(m.entries.length);
    for (const e of m.entries) {
      this.u8(e.type === "normal" ? 0 : 1);
      this.u64(e.term);
      this.u64(e.index);
      this.bytes(e.data);
    }
    const s = m.snapshot;
    if (s !== null) {
      this.u64(s.metadata.index);
      this.u64(s.metadata.term);
      this.u32(s.metadata.confState.voters.length);
      for (const id of s.metadata.confState.voters) this.u64(id);
      this.u32(s.metadata.confState.learners.length);
      for (const id of s.metadata.confState.learners) this.u64(id);
      this.bytes(s.data);
    }
  }
}

/** Encoded size of a frame holding `messages`, length prefix included. */
export function frameBytes(messages: readonly Message[]): number {
  let size = FRAME_PREFIX_BYTES + BODY_HEADER_BYTES;
  for (const m of messages) size += messageBytes(m);
  return size;
}

/** One frame (length prefix included) holding `messages` in order. */
export function encodeFrame(messages: readonly Message[]): Buffer {
  const size = frameBytes(messages);
  const writer = new Writer(Buffer.allocUnsafe(size));
  writer.u32(size - FRAME_PREFIX_BYTES);
  writer.u8(FRAME_VERSION);
  writer.u32(messages.length);
  for (const m of messages) writer.message(m);
  assert.equal(writer.offset, size, "raft frame: bytes written differ from the size computed");
  return writer.buffer;
}

/**
 * Frames for `messages`, each at most `maxFrameBytes` (a receiver refuses larger ones), in order. A message too
 * large for any frame is left out and counted in `oversized` (the core resends; it caps one append far below).
 */
export function encodeFrames(
  messages: readonly Message[],
  maxFrameBytes: number,
): { frames: Buffer[]; oversized: number } {
  const frames: Buffer[] = [];
  let oversized = 0;
  let group: Message[] = [];
  let groupBytes = FRAME_PREFIX_BYTES + BODY_HEADER_BYTES;
  for (const m of messages) {
    const size = messageBytes(m);
    if (FRAME_PREFIX_BYTES + BODY_HEADER_BYTES + size > maxFrameBytes) {
      oversized++;
      continue;
    }
    if (groupBytes + size > maxFrameBytes) {
      frames.push(encodeFrame(group));
      group = [];
      groupBytes = FRAME_PREFIX_BYTES + BODY_HEADER_BYTES;
    }
    group.push(m);
    groupBytes += size;
  }
  if (group.length > 0) frames.push(encodeFrame(group));
  return { frames, oversized };
}

/**
 * Reads a frame body; every read checks the bytes left first. Field names are constants and the position (which
 * message, which entry) is kept in counters, so that no string is built unless the input is bad.
 */
class Reader {
  private offset: number;
  private messageAt = -1;
  private entryAt = -1;
  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    private readonly end: number,
  ) {
    this.offset = start;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  fail(field: string, problem: string): RaftDecodeError {
    let where = "peer frame";
    if (this.messageAt >= 0) where += ` message[${this.messageAt}]`;
    if (this.entryAt >= 0) where += ` entries[${this.entryAt}]`;
    return new RaftDecodeError(`${where} ${field}: ${problem}`);
  }

  private need(count: number, field: string): number {
    const at = this.offset;
    if (count > this.end - at) throw this.fail(field, `truncated (needs ${count} bytes, ${this.end - at} left)`);
    this.offset = at + count;
    return at;
  }

  u8(field: string): number {
    return this.bytes[this.need(1, field)]!;
  }

  u32(field: string): number {
    return this.u32At(this.need(4, field));
  }

  /** The u32 at `at`, whose bytes the caller checked are there. */
  private u32At(at: number): number {
    const b = this.bytes;
    return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 0x100_0000;
  }

  /** A u64 that must be a safe integer. */
  u64(field: string): number {
    const low = this.u32(field);
    const high = this.u32(field);
    if (high > MAX_SAFE_HIGH) throw this.fail(field, "over 2^53");
    return high * TWO_POW_32 + low;
  }

  nodeId(field: string): NodeId {
    const id = this.u64(field);
    if (id === 0) throw this.fail(field, "0 is not a member id");
    return id;
  }

  /** A count of items of at least `itemBytes` each: never more than the bytes left can hold. */
  count(itemBytes: number, field: string): number {
    const n = this.u32(field);
    if (n * itemBytes > this.remaining) throw this.fail(field, `${n} cannot fit in the ${this.remaining} bytes left`);
    return n;
  }

  /** Length-prefixed bytes, copied: the frame's buffer (a socket chunk) is not kept alive by a stored entry. */
  bytesCopy(field: string): Uint8Array {
    const length = this.u32(field);
    const at = this.need(length, field);
    const data = new Uint8Array(length);
    if (length > 0) data.set(this.bytes.subarray(at, at + length));
    return data;
  }

  text(field: string): string {
    const length = this.u32(field);
    if (length === 0) return "";
    const at = this.need(length, field);
    try {
      return fatalUtf8.decode(this.bytes.subarray(at, at + length));
    } catch {
      throw this.fail(field, "not UTF-8");
    }
  }

  messages(): Message[] {
    const count = this.count(MESSAGE_FIXED_BYTES, "message count");
    const messages = new Array<Message>(count);
    for (let i = 0; i < count; i++) {
      this.messageAt = i;
      messages[i] = this.message();
    }
    this.messageAt = -1;
    return messages;
  }

  private message(): Message {
    const code = this.u8("type");
    const type = MESSAGE_TYPES[code];
    if (type === undefined) throw this.fail("type", `unknown code ${code}`);
    const flags = this.u8("flags");
    if ((flags & ~(FLAG_REJECT | FLAG_SNAPSHOT | FLAG_COMMIT_NOTICE)) !== 0) {
      throw this.fail("flags", `unknown bits in ${flags}`);
    }
    const from = this.nodeId("from");
    const to = this.nodeId("to");
    const term = this.u64("term");
    const logTerm = this.u64("logTerm");
    const index = this.u64("index");
    const commit = this.u64("commit");
    const rejectHint = this.u64("rejectHint");
    const context = this.text("context");
    const entries = this.entries();
    const snapshot = (flags & FLAG_SNAPSHOT) !== 0 ? this.snapshot() : null;
    return {
      type,
      from,
      to,
      term,
      logTerm,
      index,
      entries,
      commit,
      reject: (flags & FLAG_REJECT) !== 0,
      rejectHint,
      context,
      snapshot,
      commitNotice: (flags & FLAG_COMMIT_NOTICE) !== 0,
    };
  }

  /**
   * The entries of one message. Their data is copied into one new buffer shared by the message's entries: a typed
   * array of its own per entry costs an off-heap allocation each (most of the decoding time of a 16-entry append),
   * and the socket chunk the frame came in is not kept alive by entries stored in the log.
   */
  private entries(): Entry[] {
    const count = this.count(ENTRY_FIXED_BYTES, "entry count");
    if (count === 0) return [];
    // First pass: validate and find every entry's header and data; nothing is allocated per entry yet.
    const headersAt = new Array<number>(count);
    let dataBytes = 0;
    for (let i = 0; i < count; i++) {
      this.entryAt = i;
      headersAt[i] = this.offset;
      const code = this.u8("type");
      if (code >= ENTRY_TYPES.length) throw this.fail("type", `unknown code ${code}`);
      this.u64("term");
      this.u64("index");
      const length = this.u32("data length");
      this.need(length, "data");
      dataBytes += length;
    }
    this.entryAt = -1;
    const shared = new Uint8Array(dataBytes);
    const entries = new Array<Entry>(count);
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const at = headersAt[i]!;
      const length = this.u32At(at + 17);
      const dataAt = at + ENTRY_FIXED_BYTES;
      let data = EMPTY;
      if (length > 0) {
        shared.set(this.bytes.subarray(dataAt, dataAt + length), offset);
        data = new Uint8Array(shared.buffer, offset, length);
        offset += length;
      }
      entries[i] = {
        term: this.u32At(at + 5) * TWO_POW_32 + this.u32At(at + 1),
        index: this.u32At(at + 13) * TWO_POW_32 + this.u32At(at + 9),
        type: ENTRY_TYPES[this.bytes[at]!]!,
        data,
      };
    }
    return entries;
  }

  private snapshot(): Snapshot {
    const index = this.u64("snapshot.metadata.index");
    const term = this.u64("snapshot.metadata.term");
    const voters = this.ids("snapshot.metadata.confState.voters");
    const learners = this.ids("snapshot.metadata.confState.learners");
    return { metadata: { index, term, confState: { voters, learners } }, data: this.bytesCopy("snapshot.data") };
  }

  private ids(field: string): NodeId[] {
    const n = this.count(8, field);
    const ids = new Array<NodeId>(n);
    for (let i = 0; i < n; i++) ids[i] = this.nodeId(field);
    return ids;
  }
}

/** The messages of one frame body (the bytes after the length prefix); throws RaftDecodeError on bad input. */
export function decodeFrameBody(body: Uint8Array): Message[] {
  const reader = new Reader(body, 0, body.length);
  const version = reader.u8("peer frame version");
  if (version !== FRAME_VERSION) {
    throw new RaftDecodeError(`peer frame version ${version} (this member speaks ${FRAME_VERSION})`);
  }
  const messages = reader.messages();
  if (reader.remaining !== 0) throw new RaftDecodeError(`peer frame: ${reader.remaining} bytes after the last message`);
  return messages;
}

/** The messages of one whole frame (length prefix included, and it must match). */
export function decodeFrame(frame: Uint8Array): Message[] {
  if (frame.length < FRAME_PREFIX_BYTES) throw new RaftDecodeError("peer frame: shorter than its length prefix");
  const declared = new Reader(frame, 0, FRAME_PREFIX_BYTES).u32("peer frame length");
  if (declared !== frame.length - FRAME_PREFIX_BYTES) {
    throw new RaftDecodeError(`peer frame: length prefix says ${declared} bytes, ${frame.length - 4} follow`);
  }
  return decodeFrameBody(frame.subarray(FRAME_PREFIX_BYTES));
}
