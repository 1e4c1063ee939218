// The peer wire format (src/store/transport/frame.ts) and the stream splitter (protocol.ts): every message type and
// field survives a round trip; truncated, garbled and oversized input is a clear error, never a crash or a hang.
import * as fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { encodeConfChange, RaftDecodeError } from "../../../src/store/raft/codec.js";
import { type Entry, MESSAGE_TYPES, type Message } from "../../../src/store/raft/types.js";
import {
  decodeFrame,
  decodeFrameBody,
  encodeFrame,
  encodeFrames,
  FRAME_PREFIX_BYTES,
  frameBytes,
} from "../../../src/store/transport/frame.js";
import {
  FrameSplitter,
  PeerProtocolError,
  parseSnapshotBody,
  snapshotHeader,
} from "../../../src/store/transport/protocol.js";

const index = fc.oneof(fc.nat(1000), fc.constant(Number.MAX_SAFE_INTEGER), fc.maxSafeNat());
const nodeId = fc.oneof(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }));
const bytes = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  // Large entries (cheap to generate: a filled length, not 60,000 random bytes).
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 60_000, max: 70_000 }), fc.nat(255))
      .map(([length, fill]) => new Uint8Array(length).fill(fill)),
  },
);
const confChangeData = fc
  .record({
    type: fc.constantFrom("addVoter" as const, "addLearner" as const, "promoteLearner" as const, "removeNode" as const),
    nodeId,
    context: fc.uint8Array({ maxLength: 40 }),
  })
  .map((cc) => encodeConfChange(cc));
const entry: fc.Arbitrary<Entry> = fc.oneof(
  fc.record({ term: index, index, type: fc.constant("normal" as const), data: bytes }),
  fc.record({ term: index, index, type: fc.constant("confChange" as const), data: confChangeData }),
);
const snapshot = fc.record({
  metadata: fc.record({
    index,
    term: index,
    confState: fc.record({
      voters: fc.array(nodeId, { maxLength: 7 }),
      learners: fc.array(nodeId, { maxLength: 3 }),
    }),
  }),
  data: bytes,
});
const message: fc.Arbitrary<Message> = fc.record({
  type: fc.constantFrom(...MESSAGE_TYPES),
  from: nodeId,
  to: nodeId,
  term: index,
  logTerm: index,
  index,
  entries: fc.array(entry, { maxLength: 20 }),
  commit: index,
  reject: fc.boolean(),
  rejectHint: index,
  context: fc.oneof(fc.constant(""), fc.string(), fc.string({ unit: "grapheme" })),
  snapshot: fc.option(snapshot, { nil: null }),
  commitNotice: fc.boolean(),
});

function append(entries: number, dataBytes = 100): Message {
  return {
    type: "app",
    from: 1,
    to: 2,
    term: 3,
    logTerm: 3,
    index: 10,
    entries: Array.from({ length: entries }, (_, i) => ({
      term: 3,
      index: 11 + i,
      type: "normal" as const,
      data: new Uint8Array(dataBytes).fill(i),
    })),
    commit: 9,
    reject: false,
    rejectHint: 0,
    context: "",
    snapshot: null,
    commitNotice: false,
  };
}

const isDecodeError = (pattern: RegExp) => (error: unknown) =>
  error instanceof RaftDecodeError && error.code === "VIGIE_ERR_RAFT_DECODE" && pattern.test(error.message);

/** Compares contents: entry data comes back as views of one buffer per message, and fast-check's records may have
 * no prototype. */
function plain(messages: Message[]): unknown {
  const hex = (v: Uint8Array) => `bytes:${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex")}`;
  return JSON.parse(JSON.stringify(messages, (_key, value) => (value instanceof Uint8Array ? hex(value) : value)));
}

test("every message type and field survives a frame, in order, and the size is announced exactly", () => {
  fc.assert(
    fc.property(fc.array(message, { maxLength: 6 }), (messages) => {
      const frame = encodeFrame(messages);
      assert.is(frame.length, frameBytes(messages));
      assert.is(frame.readUInt32LE(0), frame.length - FRAME_PREFIX_BYTES);
      const decoded = decodeFrame(frame);
      assert.equal(plain(decoded), plain(messages));
      for (const m of decoded)
        for (const e of m.entries) assert.is(Object.getPrototypeOf(e.data), Uint8Array.prototype);
    }),
    { numRuns: 300 },
  );
});

test("decoded entry data is a copy: reusing the frame's buffer (a socket chunk) changes nothing", () => {
  const frame = encodeFrame([append(3)]);
  const decoded = decodeFrame(frame);
  frame.fill(0xaa);
  assert.equal(Array.from(decoded[0]!.entries[2]!.data), new Array(100).fill(2));
  assert.is(decoded[0]!.entries[1]!.data.length, 100);
});

test("an empty frame and a message without entries or context", () => {
  assert.equal(decodeFrame(encodeFrame([])), []);
  const m = append(0);
  assert.equal(decodeFrame(encodeFrame([m])), [m]);
});

test("every proper prefix of a frame is refused as truncated, never decoded or crashed on", () => {
  fc.assert(
    fc.property(fc.array(message, { minLength: 1, maxLength: 3 }), fc.nat(), (messages, cut) => {
      const frame = encodeFrame(messages);
      const body = frame.subarray(FRAME_PREFIX_BYTES);
      const length = cut % body.length;
      assert.throws(() => decodeFrameBody(body.subarray(0, length)), isDecodeError(/truncated|cannot fit/));
      assert.throws(() => decodeFrame(frame.subarray(0, FRAME_PREFIX_BYTES + length)), isDecodeError(/length prefix/));
    }),
    { numRuns: 200 },
  );
});

test("random bytes and flipped bytes decode or fail with a RaftDecodeError, nothing else", () => {
  const decodesOrRefuses = (body: Uint8Array) => {
    try {
      const messages = decodeFrameBody(body);
      for (const m of messages) {
        assert.ok(Number.isSafeInteger(m.from) && m.from > 0 && Number.isSafeInteger(m.to) && m.to > 0);
        for (const e of m.entries) assert.ok(Number.isSafeInteger(e.index) && Number.isSafeInteger(e.term));
      }
    } catch (error) {
      if (!(error instanceof RaftDecodeError)) throw error;
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), decodesOrRefuses), { numRuns: 500 });
  fc.assert(
    fc.property(fc.array(message, { minLength: 1, maxLength: 3 }), fc.nat(), fc.nat(255), (messages, at, value) => {
      const body = Buffer.from(encodeFrame(messages).subarray(FRAME_PREFIX_BYTES));
      body[at % body.length] = value;
      decodesOrRefuses(body);
    }),
    { numRuns: 500 },
  );
});

test("bad fields are named: version, type codes, ids, flags, integers over 2^53, counts, UTF-8, trailing bytes", () => {
  const body = () => Buffer.from(encodeFrame([append(1)]).subarray(FRAME_PREFIX_BYTES));
  // Offsets in the body: version 0, count 1-4, then message 0: type 5, flags 6, from 7, to 15, term 23, logTerm 31,
  // index 39, commit 47, rejectHint 55, context length 63, entry count 67, entry 0: type 71, term 72, index 80,
  // data length 88, data 92.
  const cases: Array<[string, (b: Buffer) => void, RegExp]> = [
    ["version", (b) => b.writeUInt8(9, 0), /peer frame version 9/],
    ["message count", (b) => b.writeUInt32LE(1000, 1), /message count: 1000 cannot fit/],
    ["message type", (b) => b.writeUInt8(14, 5), /message\[0\] type: unknown code 14/],
    ["flags", (b) => b.writeUInt8(8, 6), /message\[0\] flags: unknown bits in 8/],
    ["from 0", (b) => b.writeUInt32LE(0, 7), /message\[0\] from: 0 is not a member id/],
    ["to over 2^53", (b) => b.writeUInt32LE(0x20_0000, 19), /message\[0\] to: over 2\^53/],
    ["entry count", (b) => b.writeUInt32LE(0xffff_ffff, 67), /message\[0\] entry count: 4294967295 cannot fit/],
    ["entry type", (b) => b.writeUInt8(2, 71), /message\[0\] entries\[0\] type: unknown code 2/],
    ["entry index", (b) => b.writeUInt32LE(0xffff_ffff, 84), /entries\[0\] index: over 2\^53/],
    ["entry data length", (b) => b.writeUInt32LE(101, 88), /entries\[0\] data: truncated/],
    ["trailing", (b) => b.writeUInt32LE(99, 88), /1 bytes after the last message/],
  ];
  for (const [name, corrupt, pattern] of cases) {
    const b = body();
    corrupt(b);
    assert.throws(() => decodeFrameBody(b), isDecodeError(pattern), name);
  }
  const badUtf8 = encodeFrame([{ ...append(0), context: "ab" }]);
  badUtf8[FRAME_PREFIX_BYTES + 67] = 0xff; // the context's first byte
  assert.throws(() => decodeFrame(badUtf8), isDecodeError(/context: not UTF-8/));
});

test("the splitter hands over each frame whatever the chunking, and refuses an oversized prefix before buffering", () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(message, { maxLength: 3 }), { minLength: 1, maxLength: 5 }),
      fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 20 }),
      (batches, cuts) => {
        const stream = Buffer.concat(batches.map((b) => encodeFrame(b)));
        const received: Message[][] = [];
        const splitter = new FrameSplitter(1 << 20, (body) => received.push(decodeFrameBody(body)));
        let offset = 0;
        for (let i = 0; offset < stream.length; i++) {
          const size = cuts[i % cuts.length]!;
          splitter.push(stream.subarray(offset, offset + size));
          offset += size;
        }
        assert.is(splitter.bufferedBytes, 0);
        assert.equal(plain(received.flat()), plain(batches.flat()));
      },
    ),
    { numRuns: 150 },
  );
  const splitter = new FrameSplitter(1024, () => assert.unreachable("no frame"));
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32LE(1025, 0);
  assert.throws(
    () => splitter.push(prefix),
    (error: unknown) =>
      error instanceof PeerProtocolError && error.statusCode === 413 && /over the limit/.test(error.message),
  );
  const partial = new FrameSplitter(1024, () => assert.unreachable("no frame"));
  partial.push(encodeFrame([append(2)]).subarray(0, 50));
  assert.is(partial.bufferedBytes, 50);
});

test("batches over the frame limit are split in order; a message too large for any frame is counted, not sent", () => {
  const messages = Array.from({ length: 10 }, (_, i) => ({ ...append(4, 1000), index: i }));
  const one = frameBytes([messages[0]!]);
  const { frames, oversized } = encodeFrames(messages, one * 3);
  assert.is(oversized, 0);
  assert.is(frames.length, 4);
  for (const frame of frames) assert.ok(frame.length <= one * 3);
  assert.equal(
    frames.flatMap((f) => decodeFrame(f)).map((m) => m.index),
    messages.map((m) => m.index),
  );
  const tooBig = encodeFrames([append(1), append(40, 1000), append(2)], 10_000);
  assert.is(tooBig.oversized, 1);
  assert.equal(
    tooBig.frames.flatMap((f) => decodeFrame(f)).map((m) => m.entries.length),
    [1, 2],
  );
});

test("a snapshot body is its snap message's frame then the raw bytes; anything else is refused", () => {
  const snap: Message = {
    ...append(0),
    type: "snap",
    snapshot: {
      metadata: { index: 500, term: 4, confState: { voters: [1, 2, 3], learners: [9] } },
      data: new Uint8Array([7, 7]),
    },
  };
  const data = Buffer.from([1, 2, 3, 4, 5]);
  const parsed = parseSnapshotBody(Buffer.concat([snapshotHeader(snap), data]));
  assert.equal(parsed.snapshot?.metadata, snap.snapshot?.metadata);
  assert.equal(Array.from(parsed.snapshot!.data), [1, 2, 3, 4, 5]);
  const refused = (body: Buffer, pattern: RegExp) =>
    assert.throws(
      () => parseSnapshotBody(body),
      (e: unknown) => (e instanceof PeerProtocolError || e instanceof RaftDecodeError) && pattern.test(e.message),
    );
  refused(Buffer.from([1, 2]), /no header frame/);
  refused(encodeFrame([append(1)]), /one snap message/);
  refused(snapshotHeader(snap).subarray(0, 30), /header frame of \d+ bytes in a body of 30/);
});

test.run();
