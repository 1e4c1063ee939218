// readBody on a real node:http server: a whole body, a body over the limit (refused, yet answered), a declared
// length over the limit (refused before reading), a body over the limit but within the drain bound (read to its end,
// then refused: a client that sends it all still gets the answer), and a client that goes away mid-body (canceled,
// not a fault).
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import { connect } from "node:net";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { GatewayError, Grpc } from "../../../src/store/server/errors.js";
import { readBody } from "../../../src/store/server/http-io.js";

const MAX_BYTES = 1024;
const DRAIN_BYTES = 64 * 1024;

interface Harness {
  server: Server;
  port: number;
  /** What each request's readBody settled with, in arrival order. */
  outcomes: Promise<Buffer | Error>[];
}

async function serve(drainBytes = MAX_BYTES): Promise<Harness> {
  const outcomes: Promise<Buffer | Error>[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const outcome = readBody(req, MAX_BYTES, drainBytes).then(
      (body) => body,
      (error: Error) => error,
    );
    outcomes.push(outcome);
    void outcome.then((result) => {
      if (res.destroyed) return;
      if (result instanceof Error) res.writeHead(429, { connection: "close" }).end(result.message);
      else res.end(`read ${result.length}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  return { server, port: address.port, outcomes };
}

function post(port: number, chunks: Buffer[], headers: Record<string, string> = {}) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: "POST", path: "/", headers }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

test("reads a whole body, in one chunk or several", async () => {
  const { server, port, outcomes } = await serve();
  try {
    assert.equal(await post(port, [Buffer.from("hello")]), { status: 200, body: "read 5" });
    const parts = [Buffer.alloc(300, 1), Buffer.alloc(300, 2), Buffer.alloc(300, 3)];
    assert.equal(await post(port, parts), { status: 200, body: "read 900" });
    const last = await outcomes[1];
    assert.ok(Buffer.isBuffer(last) && last.equals(Buffer.concat(parts)));
  } finally {
    server.close();
  }
});

test("a chunked body over the limit is refused (ResourceExhausted) and the client still gets the answer", async () => {
  const { server, port, outcomes } = await serve();
  try {
    const chunks = Array.from({ length: 400 }, () => Buffer.alloc(1024, 7)); // 400 KiB, no content-length
    const answer = await post(port, chunks);
    assert.is(answer.status, 429);
    const error = await outcomes[0];
    assert.ok(error instanceof GatewayError);
    assert.is(error.grpcCode, Grpc.ResourceExhausted);
  } finally {
    server.close();
  }
});

test("a declared content-length over the limit is refused before anything is read", async () => {
  const { server, port, outcomes } = await serve();
  try {
    const body = Buffer.alloc(MAX_BYTES + 1);
    const answer = await post(port, [body], { "content-length": String(body.length) });
    assert.is(answer.status, 429);
    const error = await outcomes[0];
    assert.ok(error instanceof GatewayError && error.grpcCode === Grpc.ResourceExhausted);
  } finally {
    server.close();
  }
});

/** A raw connection, to send a request in parts with pauses and see exactly what comes back and how it ends. */
async function rawConnection(port: number) {
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  let received = "";
  let failure: Error | undefined;
  socket.on("data", (chunk: Buffer) => {
    received += chunk.toString();
  });
  socket.on("error", (error) => {
    failure = error;
  });
  const ended = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  const write = (data: string | Buffer) =>
    new Promise<void>((resolve, reject) => socket.write(data, (error) => (error ? reject(error) : resolve())));
  return { socket, write, ended, received: () => received, failure: () => failure };
}

test("a body over the limit but within the drain bound is read to its end, then refused, and the answer arrives", async () => {
  const { server, port, outcomes } = await serve(DRAIN_BYTES);
  try {
    const connection = await rawConnection(port);
    const length = 8 * MAX_BYTES;
    await connection.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\n\r\n`);
    await connection.write(Buffer.alloc(2 * MAX_BYTES, 1)); // already over the limit
    while (outcomes.length === 0) await new Promise((r) => setTimeout(r, 5));
    let settled = false;
    void outcomes[0]!.then(() => {
      settled = true;
    });
    // A server that answered now and closed would leave the rest of the body unread and reset the connection.
    await new Promise((r) => setTimeout(r, 100));
    assert.not.ok(settled, "refused before the body ended");
    assert.is(connection.received(), "", "answered before the body ended");
    await connection.write(Buffer.alloc(length - 2 * MAX_BYTES, 2));
    await connection.ended;
    assert.is(connection.failure(), undefined, "the connection ended cleanly");
    assert.match(connection.received(), /^HTTP\/1\.1 429 /);
    const error = await outcomes[0];
    assert.ok(error instanceof GatewayError && error.grpcCode === Grpc.ResourceExhausted, `got ${String(error)}`);
    assert.match(error.message, /larger than max/);
  } finally {
    server.close();
  }
});

test("a body past the drain bound is refused as it passes it, declared or not", async () => {
  const { server, port, outcomes } = await serve(DRAIN_BYTES);
  try {
    const chunked = Array.from({ length: 80 }, () => Buffer.alloc(1024, 7)); // 80 KiB, no content-length
    assert.is((await post(port, chunked)).status, 429);
    const first = await outcomes[0];
    assert.ok(first instanceof GatewayError && first.grpcCode === Grpc.ResourceExhausted);
    // A declared length past the bound: refused before a byte of the body is read.
    const connection = await rawConnection(port);
    await connection.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${DRAIN_BYTES + 1}\r\n\r\n`);
    while (outcomes.length < 2) await new Promise((r) => setTimeout(r, 5));
    const second = await outcomes[1];
    assert.ok(second instanceof GatewayError && second.grpcCode === Grpc.ResourceExhausted);
    while (connection.received() === "") await new Promise((r) => setTimeout(r, 5));
    assert.match(connection.received(), /^HTTP\/1\.1 429 /);
    connection.socket.destroy();
  } finally {
    server.close();
  }
});

test("a client that goes away mid-body settles the read as canceled", async () => {
  const { server, port, outcomes } = await serve();
  try {
    const socket = connect(port, "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\npartial");
    while (outcomes.length === 0) await new Promise((r) => setTimeout(r, 5));
    socket.destroy();
    const error = await outcomes[0];
    assert.ok(error instanceof GatewayError, `got ${String(error)}`);
    assert.is(error.grpcCode, Grpc.Canceled);
    assert.is(error.message, "context canceled");
  } finally {
    server.close();
  }
});

test("called after the body was consumed, it settles at once instead of waiting for events that will not come", async () => {
  const settled: (Buffer | Error)[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.once("end", () => {
      void readBody(req, MAX_BYTES).then(
        (body) => settled.push(body),
        (error: Error) => settled.push(error),
      );
      setTimeout(() => res.end("done"), 20);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const address = server.address();
    assert.ok(address !== null && typeof address === "object");
    assert.equal(await post(address.port, [Buffer.from("consumed elsewhere")]), { status: 200, body: "done" });
    assert.is(settled.length, 1);
    assert.ok(Buffer.isBuffer(settled[0]) && settled[0].length === 0);
  } finally {
    server.close();
  }
});

test.run();
