// vigie's gateway beyond what the etcd suite can compare: limits, metrics, health without a leader, and that no
// input (random bytes on every path) stops it from serving. Real single-node replica behind it.
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../../src/log.js";
import { MetricsRegistry } from "../../../src/metrics.js";
import { startReplica } from "../../../src/store/node.js";
import { startApiServer } from "../../../src/store/server/server.js";
import { UNARY_PATHS } from "../../../src/store/server/unary-routes.js";
import { call, rawCall, StreamSession } from "../../helpers/api-client.js";
import { freePort, waitFor } from "../../helpers/ports.js";
import { type InProcessGateway, startInProcessGateway } from "./in-process.js";

const b64 = (text: string) => Buffer.from(text).toString("base64");
let gateway: InProcessGateway;

test.before(async () => {
  gateway = await startInProcessGateway({ maxStreams: 3, maxWatchersPerStream: 2 });
});
test.after(async () => {
  await gateway.stop();
});

function metricValue(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(" ")[1]);
}

test("/metrics: per-path latency histograms, request counts, open watchers and streams", async () => {
  await call(gateway.url, "/v3/kv/put", { key: b64("/m"), value: b64("1") });
  await call(gateway.url, "/v3/kv/range", { key: b64("/m") });
  // Like the store client, send the whole request body at once: the stream stays open (and counted) after it.
  const watch = new StreamSession(gateway.url, "/v3/watch");
  watch.send({ create_request: { key: b64("/m") } });
  watch.finish();
  await watch.next();
  let text = (await rawCall(gateway.url, "/metrics", undefined, "GET")).text;
  assert.ok((metricValue(text, "vigie_api_request_duration_seconds_kv_range_count") ?? 0) >= 1, text);
  assert.match(text, /vigie_api_requests_total\{path="\/v3\/kv\/put",code="0"\} \d+/);
  assert.is(metricValue(text, "vigie_api_watchers"), 1);
  assert.is(metricValue(text, "vigie_api_streams"), 1);
  assert.match(text, /# TYPE vigie_server_raft_term gauge/, "the replica's metrics are on the same page");
  watch.close();
  await new Promise((resolve) => setTimeout(resolve, 100));
  text = (await rawCall(gateway.url, "/metrics", undefined, "GET")).text;
  assert.is(metricValue(text, "vigie_api_watchers"), 0);
  assert.is(metricValue(text, "vigie_api_streams"), 0);
});

test("requestsReceived counts every request, whatever its path or outcome (the agent's idle detection reads it)", async () => {
  const before = gateway.server.requestsReceived();
  await call(gateway.url, "/v3/kv/range", { key: b64("/counted") });
  await rawCall(gateway.url, "/health", undefined, "GET");
  await rawCall(gateway.url, "/no/such/path", undefined, "GET");
  assert.is(gateway.server.requestsReceived(), before + 3);
});

test("watchers per stream and concurrent streams are bounded", async () => {
  const watch = new StreamSession(gateway.url, "/v3/watch");
  watch.send(`{"create_request":{"key":"${b64("/a")}"}}{"create_request":{"key":"${b64("/b")}"}}`);
  assert.ok((await watch.next()).result);
  assert.ok((await watch.next()).result);
  watch.send({ create_request: { key: b64("/c") } });
  assert.equal(await watch.next(), {
    error: {
      grpc_code: 2,
      http_code: 500,
      message: "too many watchers on one stream (the limit is 2)",
      http_status: "Internal Server Error",
    },
  });
  assert.is(await watch.nextLine(), undefined, "the stream ends after an error");

  const open = [0, 1, 2].map(() => new StreamSession(gateway.url, "/v3/watch"));
  for (const stream of open) {
    stream.send({ create_request: { key: b64("/s") } });
    stream.finish();
    await stream.next();
  }
  const refused = await call(gateway.url, "/v3/watch", { create_request: { key: b64("/s") } });
  assert.equal(
    { status: refused.status, body: refused.json },
    {
      status: 429,
      body: { error: "too many open streams; retry later", message: "too many open streams; retry later", code: 8 },
    },
  );
  for (const stream of open) stream.close();
});

test("a watcher whose client stops reading is cancelled by the store, not buffered without limit", async () => {
  const socket = connect(Number(new URL(gateway.url).port), "127.0.0.1");
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.pause(); // never read: the server's writes back up into the socket, then into the watcher's bounded queue
  const body = JSON.stringify({ create_request: { key: b64("/slow/"), range_end: b64("/slow0") } });
  socket.write(`POST /v3/watch HTTP/1.1\r\nhost: x\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
  await waitFor("the watcher", async () => gateway.replica.kv.watcherCount === 1, 5_000);
  const value = b64("v".repeat(1024));
  // 120 revisions of 128 events each: far more than the watcher's limit of pending events (10,000).
  for (let i = 0; i < 120; i++) {
    const success = Array.from({ length: 128 }, (_, j) => ({ request_put: { key: b64(`/slow/${j}`), value } }));
    const answer = await call(gateway.url, "/v3/kv/txn", { success });
    assert.is(answer.status, 200, answer.text);
  }
  await waitFor("the store to cancel the slow watcher", async () => gateway.replica.kv.watcherCount === 0, 10_000);
  socket.destroy();
  await waitFor(
    "the stream to be released",
    async () => {
      const text = (await rawCall(gateway.url, "/metrics", undefined, "GET")).text;
      return metricValue(text, "vigie_api_watchers") === 0 && metricValue(text, "vigie_api_streams") === 0;
    },
    5_000,
  );
});

test("random bytes on every path never stop the server", async () => {
  const paths = [...UNARY_PATHS, "/v3/lease/keepalive", "/v3/watch"];
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...paths),
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }),
        fc.json().map((text) => Buffer.from(text)),
      ),
      async (path, body) => {
        if (path === "/v3/watch") {
          // A watch stream without a valid create request stays open silently (etcd too): only check that an
          // answer, if any, is well-formed.
          const response = await fetch(`${gateway.url}${path}`, {
            method: "POST",
            body: Buffer.from(body),
            signal: AbortSignal.timeout(200),
          }).catch(() => undefined);
          if (response !== undefined && response.status !== 200) {
            assert.ok(typeof ((await response.json()) as { code?: unknown }).code === "number");
          } else if (response !== undefined) {
            await response.body?.cancel().catch(() => {});
          }
          return;
        }
        const answer = await rawCall(gateway.url, path, Buffer.from(body));
        // Either an answer or an etcd-shaped error; never a crash or a hang.
        assert.ok(answer.status < 600, `${path}: ${answer.status}`);
        if (answer.status >= 400) assert.ok(typeof answer.json?.code === "number", `${path}: ${answer.text}`);
      },
    ),
    { numRuns: 150 },
  );
  const still = await call(gateway.url, "/v3/kv/range", { key: b64("/m") });
  assert.is(still.status, 200);
});

test("GET /health is unhealthy (503, with the reason) while the member sees no leader", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "vigie-noleader-"));
  const metrics = new MetricsRegistry();
  const peerUrl = `http://127.0.0.1:${await freePort()}`;
  const absentPeer = `http://127.0.0.1:${await freePort()}`;
  // Two voters, one started: no quorum, so no leader can ever be elected.
  const replica = await startReplica({
    name: "alone",
    dataDir,
    listenPeerUrl: peerUrl,
    clientUrl: "http://127.0.0.1:1",
    initialCluster: { alone: peerUrl, absent: absentPeer },
    voters: 2,
    logger: silentLogger(),
    metrics,
    timing: { tickMs: 10, requestTimeoutMs: 300 },
  });
  const server = await startApiServer({ replica, listenUrl: "http://127.0.0.1:0", logger: silentLogger(), metrics });
  try {
    const health = await rawCall(server.url, "/health", undefined, "GET");
    assert.equal(
      { status: health.status, body: health.json },
      { status: 503, body: { health: "false", reason: "no leader" } },
    );
    const put = await call(server.url, "/v3/kv/put", { key: b64("/x"), value: b64("1") });
    assert.is(put.status, 503, put.text);
    assert.is(put.json?.code, 14);
    assert.match(String(put.json?.message), /^etcdserver: /);
    const serializable = await call(server.url, "/v3/kv/range", { key: b64("/x"), serializable: true });
    assert.is(serializable.status, 200, "serializable reads are served without a leader");
  } finally {
    await server.close();
    await replica.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test.run();
