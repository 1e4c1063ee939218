// Failover rules: a read goes on to the next endpoint after any connection failure; a write only when the
// connection failed before the request left, since a write whose answer was lost may have been applied.
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StoreUnavailableError } from "../../../src/errors.js";
import { StoreClient } from "../../../src/store/client.js";
import { freePort } from "../../helpers/ports.js";

/** Accepts connections, reads the request, then drops the connection without answering. */
async function dropper(): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const server: Server = createServer((socket) => {
    socket.once("data", () => {
      requests += 1;
      socket.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const address = server.address();
  if (address === null || typeof address !== "object") throw new Error("no address");
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests: () => requests,
    close: async () => await new Promise<void>((r) => server.close(() => r())),
  };
}

/** Answers every call like a store would, counting them. */
async function answering(): Promise<{ url: string; calls: string[]; close: () => Promise<void> }> {
  const calls: string[] = [];
  const server = createHttpServer((request, response) => {
    calls.push(request.url ?? "");
    request.resume();
    request.on("end", () => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ header: { revision: "5" } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const address = server.address();
  if (address === null || typeof address !== "object") throw new Error("no address");
  return {
    url: `http://127.0.0.1:${address.port}`,
    calls,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

test("a read fails over after a dropped connection; a write is not resent", async () => {
  const drop = await dropper();
  const good = await answering();
  const client = new StoreClient({ endpoints: [drop.url, good.url] });
  try {
    const read = await client.range("/k");
    assert.is(read.header.revision, 5);
    assert.equal(good.calls, ["/v3/kv/range"]);
    const client2 = new StoreClient({ endpoints: [drop.url, good.url] });
    const error = await client2.put("/k", "v").catch((e: unknown) => e);
    await client2.close();
    assert.instance(error, StoreUnavailableError);
    assert.match((error as Error).message, "may or may not have been applied");
    assert.equal(good.calls, ["/v3/kv/range"], "the write did not reach the second endpoint");
    assert.ok(drop.requests() >= 2);
  } finally {
    await client.close();
    await drop.close();
    await good.close();
  }
});

test("after a write whose outcome is unknown, the next write starts at the next endpoint", async () => {
  // Without this a frozen member (SIGSTOP) stays first for every write, each one timing out; see client-vigie.
  const drop = await dropper();
  const good = await answering();
  const client = new StoreClient({ endpoints: [drop.url, good.url] });
  try {
    const unknown = await client.put("/k", "1").catch((e: unknown) => e);
    assert.match((unknown as Error).message, "may or may not have been applied");
    assert.is(drop.requests(), 1);
    await client.put("/k", "2");
    assert.equal(good.calls, ["/v3/kv/put"], "the second write went to the second endpoint, the first not resent");
    assert.is(drop.requests(), 1);
  } finally {
    await client.close();
    await drop.close();
    await good.close();
  }
});

test("status(endpoint) of a member that never answers fails with the client's timeout, not the default 5 s", async () => {
  // A TCP server that accepts and never answers: what a frozen (SIGSTOP) member looks like from outside.
  const silent: Server = createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
  const address = silent.address();
  if (address === null || typeof address !== "object") throw new Error("no address");
  const good = await answering();
  const client = new StoreClient({ endpoints: [good.url], requestTimeoutMs: 200 });
  try {
    const outcome = await Promise.race([
      client.status(`http://127.0.0.1:${address.port}`).then(
        () => "answered",
        (error: unknown) => (error as Error).message,
      ),
      new Promise<string>((r) => setTimeout(() => r("still waiting after 3 s"), 3000)),
    ]);
    assert.match(outcome, "store unreachable");
  } finally {
    await client.close();
    await good.close();
    silent.close();
  }
});

test("a read that a member cannot serve now (Unavailable: no leader) goes to the next one; a write does not", async () => {
  const calls: string[] = [];
  const leaderless = createHttpServer((request, response) => {
    calls.push(request.url ?? "");
    request.resume();
    request.on("end", () => {
      response.writeHead(503, { "content-type": "application/json" });
      response.end(JSON.stringify({ error: "etcdserver: no leader", message: "etcdserver: no leader", code: 14 }));
    });
  });
  await new Promise<void>((r) => leaderless.listen(0, "127.0.0.1", () => r()));
  const address = leaderless.address();
  if (address === null || typeof address !== "object") throw new Error("no address");
  const cutOff = `http://127.0.0.1:${address.port}`;
  const good = await answering();
  const client = new StoreClient({ endpoints: [cutOff, good.url] });
  const writer = new StoreClient({ endpoints: [cutOff, good.url] });
  const alone = new StoreClient({ endpoints: [cutOff] });
  try {
    assert.is((await client.range("/k")).header.revision, 5, "served by the member that has a leader");
    const write = await writer.put("/k", "v").then(
      () => "written",
      (error: Error) => error.message,
    );
    assert.is(write, "etcdserver: no leader", "a write's Unavailable answer is final: it may still be applied");
    const only = await alone.range("/k").then(
      () => "read",
      (error: Error) => error.message,
    );
    assert.is(only, "etcdserver: no leader", "with no other member, the member's own answer");
  } finally {
    await client.close();
    await writer.close();
    await alone.close();
    leaderless.closeAllConnections();
    await new Promise((r) => leaderless.close(r));
    await good.close();
  }
});

test("a write goes to the next endpoint when the first refuses the connection", async () => {
  const good = await answering();
  const client = new StoreClient({ endpoints: [`http://127.0.0.1:${await freePort()}`, good.url] });
  try {
    await client.put("/k", "v");
    assert.equal(good.calls, ["/v3/kv/put"]);
  } finally {
    await client.close();
    await good.close();
  }
});

test.run();
