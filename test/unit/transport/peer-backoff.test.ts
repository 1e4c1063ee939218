// The peer stream's reconnect backoff: a peer that closes each stream at once makes the sender wait longer each time,
// up to the maximum; a stream that served for a while and then broke starts the backoff afresh, so one network blip
// after hours of service does not cost the longest wait.
import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";
import pino from "pino";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PeerClient } from "../../../src/store/transport/peer-client.js";
import { waitFor } from "../../helpers/ports.js";
import { appendMessage } from "./append-message.js";

const BACKOFF_MIN_MS = 20;
const BACKOFF_MAX_MS = 160;

/** A stand-in peer that accepts stream upgrades and either closes each at once or keeps it until told. */
async function standInPeer(): Promise<{ url: string; server: Server; mode: { closeAtOnce: boolean }; open: Socket[] }> {
  const mode = { closeAtOnce: true };
  const open: Socket[] = [];
  const server = createServer((_req, res) => res.end());
  server.on("upgrade", (req, socket: Socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${req.headers.upgrade}\r\n\r\n`);
    socket.on("error", () => {});
    socket.resume();
    if (mode.closeAtOnce) socket.destroy();
    else open.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  return { url: `http://127.0.0.1:${address.port}`, server, mode, open };
}

test("a peer closing each stream at once doubles the wait up to the maximum; a stream that served resets it", async () => {
  const peer = await standInPeer();
  // The client logs each failure with the backoff it chose.
  const backoffs: number[] = [];
  const logger = pino(
    { level: "debug" },
    {
      write(line: string) {
        const entry = JSON.parse(line) as { msg?: string; backoffMs?: number };
        if (entry.msg === "peer unreachable" && entry.backoffMs !== undefined) backoffs.push(entry.backoffMs);
      },
    },
  );
  const client = new PeerClient({
    clusterId: 7,
    fromId: 1,
    peerId: 2,
    peerUrl: peer.url,
    logger,
    onUnreachable: () => {},
    onSnapshotResult: () => {},
    maxQueuedMessages: 1000,
    requestTimeoutMs: 1000,
    snapshotTimeoutMs: 1000,
    backoffMinMs: BACKOFF_MIN_MS,
    backoffMaxMs: BACKOFF_MAX_MS,
  });
  let index = 0;
  const sendUntil = (what: string, done: () => boolean) =>
    waitFor(what, async () => {
      client.enqueue(appendMessage(1, 2, index++, { entries: [] }));
      client.flush();
      await new Promise((resolve) => setTimeout(resolve, 5));
      return done();
    });
  try {
    // Each stream closed at once: 20, 40, 80, 160, then the maximum again.
    await sendUntil("five failures", () => backoffs.length >= 5);
    assert.equal(backoffs.slice(0, 5), [20, 40, 80, 160, 160]);

    // A stream that stays up longer than the maximum backoff, then breaks: the next wait is the minimum again.
    peer.mode.closeAtOnce = false;
    const failures = backoffs.length;
    await sendUntil("a stream that stays open", () => peer.open.length > 0);
    assert.is(backoffs.length, failures, "no failure while the stream serves");
    await new Promise((resolve) => setTimeout(resolve, BACKOFF_MAX_MS + 50));
    for (const socket of peer.open.splice(0)) socket.destroy();
    await waitFor("the break reported", async () => backoffs.length > failures);
    assert.is(backoffs[failures], BACKOFF_MIN_MS, "a stream that served starts the backoff afresh");

    // And a stream the peer closes at once after that grows it again from there.
    peer.mode.closeAtOnce = true;
    await sendUntil("one more failure", () => backoffs.length > failures + 1);
    assert.is(backoffs[failures + 1], BACKOFF_MIN_MS * 2);
  } finally {
    await client.close();
    for (const socket of peer.open) socket.destroy();
    await new Promise((resolve) => peer.server.close(resolve));
  }
});

test.run();
