// Health checks against real servers and programs on loopback: every kind passes, fails and times out as documented.
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { healthCheckSchema } from "../../../src/config/schema.js";
import { runCheck, splitHostPort } from "../../../src/services/checks.js";
import { freePort } from "../../helpers/ports.js";

/** Checks that must pass get a timeout no loaded machine reaches (`node -e` alone can take 400 ms). */
function check(input: Record<string, unknown>) {
  return healthCheckSchema.parse({ timeout: "5s", ...input });
}

/** For the cases that must time out: short, so the test stays fast. */
function hangingCheck(input: Record<string, unknown>) {
  return healthCheckSchema.parse({ timeout: "300ms", ...input });
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address !== "object") throw new Error("no address");
  return address.port;
}

test("http: 2xx passes, 5xx fails, a hung answer times out, a closed port fails", async () => {
  const server = createHttpServer((request, response) => {
    if (request.url === "/ok") response.end("fine");
    else if (request.url === "/hang") setTimeout(() => response.end("late"), 2_000).unref();
    else {
      response.statusCode = 503;
      response.end("down");
    }
  });
  const port = await listen(server);
  try {
    const ok = await runCheck(check({ http: `http://127.0.0.1:${port}/ok` }));
    assert.equal([ok.passing, ok.output], [true, "HTTP 200"]);
    const down = await runCheck(check({ http: `http://127.0.0.1:${port}/down` }));
    assert.equal([down.passing, down.output], [false, "HTTP 503"]);
    const hang = await runCheck(hangingCheck({ http: `http://127.0.0.1:${port}/hang` }));
    assert.is(hang.passing, false);
    assert.match(hang.output, /timed out after 300 ms/);
    assert.ok(hang.durationMs < 1_500, `the timeout bounds the check (took ${hang.durationMs} ms)`);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  const closed = await runCheck(check({ http: `http://127.0.0.1:${await freePort()}/` }));
  assert.is(closed.passing, false);
  assert.match(closed.output, /ECONNREFUSED/);
});

test("tcp: a listening port passes, a closed one fails", async () => {
  const server = createTcpServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address !== "object") throw new Error("no address");
  try {
    const open = await runCheck(check({ tcp: `127.0.0.1:${address.port}` }));
    assert.is(open.passing, true);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  const closed = await runCheck(check({ tcp: `127.0.0.1:${await freePort()}` }));
  assert.is(closed.passing, false);
  assert.match(closed.output, /ECONNREFUSED/);
});

test("exec: exit 0 passes, non-zero fails with its output, a hang is killed, no shell interprets argv", async () => {
  const pass = await runCheck(check({ exec: ["node", "-e", "console.log('all good')"] }));
  assert.equal([pass.passing, pass.output], [true, "exit 0: all good"]);
  const fail = await runCheck(check({ exec: ["node", "-e", "console.error('disk full'); process.exit(3)"] }));
  assert.equal([fail.passing, fail.output], [false, "exit 3: disk full"]);
  const hang = await runCheck(hangingCheck({ exec: ["sleep", "5"] }));
  assert.equal([hang.passing, hang.output], [false, "timed out after 300 ms"]);
  const missing = await runCheck(check({ exec: ["/nonexistent/program"] }));
  assert.is(missing.passing, false);
  assert.match(missing.output, /ENOENT/);
  // With a shell, `;` would run a second command; without one it is just an argument to echo.
  const literal = await runCheck(check({ exec: ["echo", "a; exit 7"] }));
  assert.equal([literal.passing, literal.output], [true, "exit 0: a; exit 7"]);
});

test("exec: a hang in a grandchild is bounded by the timeout; a check that starts a daemon passes when it exits", async () => {
  const hang = await runCheck(hangingCheck({ exec: ["sh", "-c", "sleep 5; true"] }));
  assert.equal([hang.passing, hang.output], [false, "timed out after 300 ms"]);
  assert.ok(hang.durationMs < 2_000, `the timeout bounds the check (took ${hang.durationMs} ms)`);
  const daemon = await runCheck(check({ exec: ["sh", "-c", "sleep 5 & exit 0"] }));
  assert.equal([daemon.passing, daemon.output], [true, "exit 0"]);
  assert.ok(daemon.durationMs < 2_000, `done when sh exited (took ${daemon.durationMs} ms)`);
});

test("splitHostPort: IPv4, names and bracketed IPv6; bad ports are refused", () => {
  assert.equal(splitHostPort("127.0.0.1:8081"), { host: "127.0.0.1", port: 8081 });
  assert.equal(splitHostPort("web.local:80"), { host: "web.local", port: 80 });
  assert.equal(splitHostPort("[::1]:8080"), { host: "::1", port: 8080 });
  assert.throws(() => splitHostPort("127.0.0.1:70000"), /out of range/);
  assert.throws(() => splitHostPort("127.0.0.1"), /host:port/);
});

test.run();
