// The watch stream parser on chunk boundaries a real etcd rarely produces: a line split across chunks, several
// lines in one chunk, an oversized message, a stream error line, and a store that closes the stream.
// A loopback HTTP server plays the gateway, since etcd cannot be made to split its messages on demand.
import { createServer, type ServerResponse } from "node:http";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StoreUnavailableError } from "../../../src/errors.js";
import { EtcdError, StoreClient, type WatchResponse } from "../../../src/store/client.js";

async function gateway(respond: (response: ServerResponse) => Promise<void>) {
  const server = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      response.writeHead(200, { "content-type": "application/json" });
      void respond(response);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const address = server.address();
  if (address === null || typeof address !== "object") throw new Error("no address");
  const client = new StoreClient({ endpoints: [`http://127.0.0.1:${address.port}`] });
  return {
    client,
    close: async () => {
      await client.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const b64 = (text: string) => Buffer.from(text).toString("base64");
const event = (key: string, rev: number) =>
  JSON.stringify({
    result: {
      header: { revision: String(rev) },
      events: [{ kv: { key: b64(key), value: b64("v"), mod_revision: String(rev) } }],
    },
  });
const pause = () => new Promise((r) => setTimeout(r, 10));

test("lines split across chunks and several lines per chunk are decoded in order", async () => {
  const g = await gateway(async (response) => {
    const created = JSON.stringify({ result: { header: { revision: "1" }, created: true } });
    const text = `${created}\n${event("/a", 2)}\n${event("/b", 3)}\n${event("/c", 4)}\n`;
    response.write(text.slice(0, 10));
    await pause();
    response.write(text.slice(10, created.length + 30));
    await pause();
    response.write(text.slice(created.length + 30));
  });
  const seen: WatchResponse[] = [];
  const stream = g.client.watch("/", { prefix: true });
  for await (const message of stream) {
    seen.push(message);
    if (seen.length === 4) break;
  }
  assert.ok(seen[0]?.created);
  assert.equal(
    seen.slice(1).map((m) => [m.events[0]?.kv.key.toString(), m.events[0]?.kv.modRevision]),
    [
      ["/a", 2],
      ["/b", 3],
      ["/c", 4],
    ],
  );
  await g.close();
});

test("a message larger than the limit ends the stream with an error", async () => {
  const g = await gateway(async (response) => {
    response.write(`{"result":{"events":[{"kv":{"value":"${"A".repeat(5000)}`);
  });
  const error = await (async () => {
    for await (const _ of g.client.watch("/", { prefix: true, maxMessageBytes: 1000 })) {
      // nothing arrives
    }
  })().catch((e: unknown) => e);
  assert.instance(error, StoreUnavailableError);
  assert.match((error as Error).message, "larger than 1000 bytes");
  await g.close();
});

test("an error line becomes an EtcdError; a closed stream a StoreUnavailableError", async () => {
  const failing = await gateway(async (response) => {
    response.end(`${JSON.stringify({ error: { grpc_code: 14, http_code: 503, message: "etcdserver: no leader" } })}\n`);
  });
  const error = await (async () => {
    for await (const _ of failing.client.watch("/k")) {
      // nothing
    }
  })().catch((e: unknown) => e);
  assert.instance(error, EtcdError);
  assert.is((error as EtcdError).grpcCode, 14);
  await failing.close();
  const closing = await gateway(async (response) => {
    response.end(`${JSON.stringify({ result: { created: true } })}\n`);
  });
  const closed = await (async () => {
    for await (const _ of closing.client.watch("/k")) {
      // the created message, then the end
    }
  })().catch((e: unknown) => e);
  assert.instance(closed, StoreUnavailableError);
  assert.match((closed as Error).message, "closed the stream");
  await closing.close();
});

test.run();
