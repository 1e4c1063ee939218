// The peer transport on real loopback sockets: batches arrive in order, snapshots stream in chunks, another
// cluster's traffic is refused, an unreachable peer is reported to the core.
import { spawn } from "node:child_process";
import { connect, type Socket } from "node:net";
import { Writable } from "node:stream";
import pino from "pino";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../../src/log.js";
import type { Message } from "../../../src/store/raft/types.js";
import { encodeFrame } from "../../../src/store/transport/frame.js";
import {
  CLUSTER_HEADER,
  FROM_HEADER,
  MESSAGES_PATH,
  SNAPSHOT_PATH,
  STREAM_PATH,
  STREAM_PROTOCOL,
  snapshotHeader,
  TO_HEADER,
} from "../../../src/store/transport/protocol.js";
import { PeerTransport } from "../../../src/store/transport/transport.js";
import { freePort, waitFor } from "../../helpers/ports.js";
import { appendMessage as message } from "./append-message.js";

/** Where a frame's first message's type code is: length prefix (4), version (1), message count (4). */
const FRAME_TYPE_OFFSET = 9;

function endpoint(clusterId: number, memberId: number, removed = new Set<number>([666]), logger = silentLogger()) {
  const received: Message[] = [];
  const unreachable: number[] = [];
  const snapshots: Array<[number, boolean]> = [];
  const transport = new PeerTransport({
    clusterId,
    memberId,
    logger,
    onMessages: (ms) => received.push(...ms),
    onUnreachable: (peer) => unreachable.push(peer),
    onSnapshotResult: (peer, ok) => snapshots.push([peer, ok]),
    acceptsFrom: (peer) => !removed.has(peer),
    probe: () => ({ clusterId, memberId }),
    requestTimeoutMs: 1000,
  });
  return { transport, received, unreachable, snapshots };
}

test("messages arrive in order, batched; a snapshot streams whole", async () => {
  const a = endpoint(7, 1);
  const b = endpoint(7, 2);
  const urlA = await a.transport.listen("http://127.0.0.1:0");
  const urlB = await b.transport.listen("http://127.0.0.1:0");
  a.transport.setPeer(2, urlB);
  b.transport.setPeer(1, urlA);
  const sent = Array.from({ length: 3000 }, (_, i) => message(1, 2, i));
  for (let i = 0; i < sent.length; i += 100) a.transport.send(sent.slice(i, i + 100));
  // Consecutive appends arrive merged (see coalesce.ts): what counts is every entry, in order.
  const entries = () => b.received.flatMap((m) => m.entries);
  await waitFor("3000 entries", async () => entries().length === 3000);
  assert.equal(
    entries().map((e) => e.index),
    sent.map((m) => m.index + 1),
  );
  assert.equal(entries()[5]?.data, new Uint8Array([5, 1, 2]));

  const data = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => i % 251);
  const snap = message(1, 2, 0, {
    type: "snap",
    entries: [],
    snapshot: { metadata: { index: 4000, term: 3, confState: { voters: [1, 2], learners: [] } }, data },
  });
  b.received.length = 0;
  a.transport.send([snap]);
  await waitFor("the snapshot", async () => b.received.length === 1);
  const got = b.received[0]!;
  assert.is(got.type, "snap");
  assert.is(got.snapshot?.metadata.index, 4000);
  assert.is(got.snapshot?.data.length, data.length);
  assert.ok(Buffer.from(got.snapshot!.data).equals(Buffer.from(data)));
  await waitFor("the snapshot result", async () => a.snapshots.length === 1);
  assert.equal(a.snapshots, [[2, true]]);
  await a.transport.close();
  await b.transport.close();
});

test("another cluster's requests and a removed member's are refused; bad frames are a 400", async () => {
  const b = endpoint(7, 2);
  const urlB = await b.transport.listen("http://127.0.0.1:0");
  const post = (cluster: string, from: string, body: Uint8Array) =>
    fetch(`${urlB}${MESSAGES_PATH}`, {
      method: "POST",
      body,
      headers: { [CLUSTER_HEADER]: cluster, [FROM_HEADER]: from, [TO_HEADER]: "2" },
    });
  const frame = encodeFrame([message(1, 2, 4)]);
  const foreign = await post("8", "1", frame);
  assert.is(foreign.status, 403);
  assert.match(await foreign.text(), /cluster id mismatch/);
  const removed = await post("7", "666", frame);
  assert.is(removed.status, 403);
  assert.is(b.received.length, 0);
  const ok = await post("7", "1", Buffer.concat([frame, encodeFrame([])]));
  assert.is(ok.status, 204);
  assert.equal(b.received, [message(1, 2, 4)]);
  const truncated = await post("7", "1", frame.subarray(0, frame.length - 1));
  assert.is(truncated.status, 400);
  assert.match(await truncated.text(), /VIGIE_ERR_RAFT_DECODE.*cut short/);
  const garbled = Buffer.from(frame);
  garbled[FRAME_TYPE_OFFSET] = 0xee;
  const bad = await post("7", "1", garbled);
  assert.is(bad.status, 400);
  assert.match(await bad.text(), /message\[0\] type: unknown code 238/);
  const oversized = Buffer.alloc(8);
  oversized.writeUInt32LE(0xffff_fff0, 0);
  const huge = await post("7", "1", oversized);
  assert.is(huge.status, 413);
  assert.is(b.received.length, 1, "nothing more delivered");
  await b.transport.close();
});

/** Opens a message stream by hand (HTTP upgrade on a raw socket): the socket, the answer's head, its closing. */
async function openRawStream(
  url: URL,
  headers: Record<string, string>,
): Promise<{ socket: Socket; answer: string; closed: Promise<unknown> }> {
  const socket = connect(Number(url.port), url.hostname);
  const closed = new Promise((resolve) => socket.once("close", resolve));
  await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
  socket.write(
    `GET ${STREAM_PATH} HTTP/1.1\r\nhost: ${url.host}\r\nconnection: upgrade\r\nupgrade: ${STREAM_PROTOCOL}\r\n${lines.join("")}\r\n`,
  );
  const answer = await new Promise<string>((resolve) => {
    let text = "";
    socket.on("data", function onData(chunk: Buffer) {
      text += chunk.toString("latin1");
      if (text.includes("\r\n\r\n")) {
        socket.off("data", onData);
        resolve(text);
      }
    });
  });
  socket.resume();
  return { socket, answer, closed };
}

test("a garbled frame on a stream is refused and logged, the stream closed; the frames before it were delivered", async () => {
  const logged: Array<{ msg: string; err?: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logged.push(JSON.parse(chunk.toString()) as { msg: string; err?: string });
      done();
    },
  });
  const b = endpoint(7, 2, new Set(), pino({ level: "warn" }, sink));
  const urlB = new URL(await b.transport.listen("http://127.0.0.1:0"));
  const { socket, answer, closed } = await openRawStream(urlB, {
    [CLUSTER_HEADER]: "7",
    [FROM_HEADER]: "1",
    [TO_HEADER]: "2",
  });
  assert.match(answer, /^HTTP\/1.1 101 /);
  // The good frame is split across writes; the garbled one follows.
  const good = encodeFrame([message(1, 2, 1)]);
  const garbled = encodeFrame([message(1, 2, 2)]);
  garbled[FRAME_TYPE_OFFSET] = 0xee;
  socket.write(good.subarray(0, 10));
  await new Promise((resolve) => setTimeout(resolve, 20));
  socket.write(Buffer.concat([good.subarray(10), garbled]));
  await closed;
  assert.equal(b.received, [message(1, 2, 1)]);
  await waitFor("the refusal logged", async () => logged.some((l) => l.msg === "refused a peer stream; closing it"));
  assert.match(logged.find((l) => l.msg === "refused a peer stream; closing it")?.err ?? "", /type: unknown code 238/);
  await b.transport.close();
});

test("a stream asked for by another cluster is answered 403 and closed before any frame is read", async () => {
  const b = endpoint(7, 2);
  const urlB = new URL(await b.transport.listen("http://127.0.0.1:0"));
  const { socket, answer, closed } = await openRawStream(urlB, {
    [CLUSTER_HEADER]: "8",
    [FROM_HEADER]: "1",
    [TO_HEADER]: "2",
  });
  assert.match(answer, /^HTTP\/1.1 403 /);
  assert.match(answer, /cluster id mismatch/);
  if (!socket.destroyed) socket.write(encodeFrame([message(1, 2, 1)]));
  await closed;
  assert.is(b.received.length, 0);
  const plain = await fetch(`${urlB.origin}${STREAM_PATH}`, {
    method: "POST",
    body: encodeFrame([message(1, 2, 1)]),
    headers: { [CLUSTER_HEADER]: "7", [FROM_HEADER]: "1", [TO_HEADER]: "2" },
  });
  assert.is(plain.status, 426, "a stream without the upgrade is refused");
  assert.is(b.received.length, 0);
  await b.transport.close();
});

test("a stream from another cluster delivers nothing and its sender backs off", async () => {
  const foreign = endpoint(8, 1);
  const b = endpoint(7, 2);
  const urlB = await b.transport.listen("http://127.0.0.1:0");
  await foreign.transport.listen("http://127.0.0.1:0");
  foreign.transport.setPeer(2, urlB);
  foreign.transport.send([message(1, 2, 1)]);
  await waitFor("the refusal reported as unreachable", async () => foreign.unreachable.includes(2));
  assert.is(b.received.length, 0);
  await foreign.transport.close();
  await b.transport.close();
});

test("a member removed while its stream is open delivers nothing more", async () => {
  const removed = new Set<number>();
  const a = endpoint(7, 1);
  const b = endpoint(7, 2, removed);
  const urlB = await b.transport.listen("http://127.0.0.1:0");
  await a.transport.listen("http://127.0.0.1:0");
  a.transport.setPeer(2, urlB);
  a.transport.send([message(1, 2, 1)]);
  await waitFor("delivery on the open stream", async () => b.received.length === 1);
  removed.add(1);
  // The stream opened before the removal stays connected on the sender's side; what it carries is refused.
  const vote = message(1, 2, 0, { type: "vote", entries: [], term: 9 });
  for (let i = 0; i < 5; i++) {
    a.transport.send([vote]);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await waitFor("the refusal reported as unreachable", async () => a.unreachable.includes(2));
  assert.is(b.received.length, 1, "no vote from the removed member");
  await a.transport.close();
  await b.transport.close();
});

test("a snapshot whose message names another sender or addressee than its headers is refused", async () => {
  const b = endpoint(7, 2);
  const urlB = await b.transport.listen("http://127.0.0.1:0");
  const snap = (from: number, to: number) =>
    message(from, to, 0, {
      type: "snap",
      entries: [],
      snapshot: {
        metadata: { index: 40, term: 3, confState: { voters: [1, 2, 3], learners: [] } },
        data: new Uint8Array(0),
      },
    });
  const post = (m: Message) =>
    fetch(`${urlB}${SNAPSHOT_PATH}`, {
      method: "POST",
      body: Buffer.concat([snapshotHeader(m), Buffer.from([1, 2, 3])]),
      headers: { [CLUSTER_HEADER]: "7", [FROM_HEADER]: "1", [TO_HEADER]: "2" },
    });
  const forged = await post(snap(3, 2));
  assert.is(forged.status, 400);
  assert.match(await forged.text(), /snapshot message from 3 to 2 sent as from 1 to 2/);
  const misaddressed = await post(snap(1, 3));
  assert.is(misaddressed.status, 400);
  assert.is(b.received.length, 0);
  const ok = await post(snap(1, 2));
  assert.is(ok.status, 204);
  assert.is(b.received.length, 1);
  assert.equal(b.received[0]?.snapshot?.data, new Uint8Array([1, 2, 3]));
  await b.transport.close();
});

test("an unreachable peer is reported and retried after a backoff", async () => {
  const a = endpoint(7, 1);
  await a.transport.listen("http://127.0.0.1:0");
  const port = await freePort();
  a.transport.setPeer(2, `http://127.0.0.1:${port}`);
  a.transport.send([message(1, 2, 1)]);
  await waitFor("unreachable report", async () => a.unreachable.includes(2));
  // The peer comes up: messages flow again after the backoff.
  const b = endpoint(7, 2);
  await b.transport.listen(`http://127.0.0.1:${port}`);
  await waitFor(
    "delivery after the peer started",
    async () => {
      a.transport.send([message(1, 2, 2)]);
      return b.received.length > 0;
    },
    5000,
  );
  await a.transport.close();
  await b.transport.close();
});

/** A stand-in peer in its own process (its event loop runs while ours is blocked): accepts the stream upgrade and
 * prints when stream bytes arrive. */
const ARRIVAL_RECORDER = `
const server = require("node:http").createServer((req, res) => res.end());
server.on("upgrade", (req, socket) => {
  socket.write("HTTP/1.1 101 Switching Protocols\\r\\nconnection: upgrade\\r\\nupgrade: " + req.headers.upgrade + "\\r\\n\\r\\n");
  socket.on("data", () => process.stdout.write("chunk " + Date.now() + "\\n"));
});
server.listen(0, "127.0.0.1", () => process.stdout.write("port " + server.address().port + "\\n"));
`;

test("a peer that restarts closes the streams it accepted; the sender reconnects and what it sends next arrives in order", async () => {
  const a = endpoint(7, 1);
  let b = endpoint(7, 2);
  const urlB = await b.transport.listen(`http://127.0.0.1:${await freePort()}`);
  a.transport.setPeer(2, urlB);
  try {
    a.transport.send([message(1, 2, 0)]);
    await waitFor("the first message", async () => b.received.length === 1);
    // An accepted stream left open would keep close() waiting for the connection to end.
    const closeTimer = new Promise<never>((_, reject) => {
      setTimeout(() => reject(new Error("close() waits: an accepted stream is still open")), 5000).unref();
    });
    await Promise.race([b.transport.close(), closeTimer]);
    b = endpoint(7, 2);
    await b.transport.listen(urlB);
    // What is sent while the peer is away may be lost (Raft sends it again): send until the new stream carries one.
    let index = 1;
    await waitFor("a message over the new stream", async () => {
      a.transport.send([message(1, 2, index++)]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      return b.received.length > 0;
    });
    const from = b.received.at(-1)!.index;
    for (let i = index; i < index + 200; i++) a.transport.send([message(1, 2, i)]);
    const entries = () => b.received.flatMap((m) => m.entries).filter((e) => e.index > from + 1);
    await waitFor("200 more", async () => entries().at(-1)?.index === index + 200);
    const indexes = entries().map((e) => e.index);
    assert.equal(
      indexes,
      Array.from({ length: indexes.length }, (_, i) => from + 2 + i),
    );
  } finally {
    await a.transport.close();
    await b.transport.close();
  }
});

test("send writes to the peer's socket before returning: a loop blocked right after (a leader's fsync) does not hold it", async () => {
  const recorder = spawn(process.execPath, ["-e", ARRIVAL_RECORDER], { stdio: ["ignore", "pipe", "inherit"] });
  const lines: string[] = [];
  let buffered = "";
  recorder.stdout.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split("\n");
    buffered = parts.pop() ?? "";
    lines.push(...parts);
  });
  const a = endpoint(7, 1);
  try {
    await waitFor("the recorder's port", async () => lines.some((l) => l.startsWith("port ")));
    const port = lines.find((l) => l.startsWith("port "))!.slice(5);
    a.transport.setPeer(2, `http://127.0.0.1:${port}`);
    const chunks = () => lines.filter((l) => l.startsWith("chunk ")).map((l) => Number(l.slice(6)));
    a.transport.send([message(1, 2, 0)]); // opens the stream
    await waitFor("the first batch", async () => chunks().length >= 1);
    const seen = chunks().length;
    const sentAt = Date.now();
    a.transport.send([message(1, 2, 1)]);
    const blockMs = 2000; // long enough that a loaded machine's scheduling delays stay well inside it
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, blockMs); // the loop is blocked, as by an fsync
    await waitFor("the second batch", async () => chunks().length > seen);
    const arrivedAfterMs = chunks()[seen]! - sentAt;
    // Written before the block: it arrives while the loop is still blocked (a deferred write comes after it).
    assert.ok(
      arrivedAfterMs < blockMs,
      `the batch reached the peer ${arrivedAfterMs} ms after send, not while blocked`,
    );
  } finally {
    recorder.kill();
    await a.transport.close();
  }
});

test.run();
