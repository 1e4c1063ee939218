// The HTTP clients' undici Pool (src/store/undici-pool.ts) loads without node:http2 (which brings tls, dns and
// node's crypto internals into every agent), and an h2 connection still works: the stand-in registered for undici's
// HTTP/2 module loads the real one on first use. Which built-ins the pool loads is checked in a fresh node process
// (the test runner shares one process between test files, some of which load http2).
import { execFileSync } from "node:child_process";
import { test } from "uvu";
import * as assert from "uvu/assert";

// A self-signed certificate for 127.0.0.1 (EC P-256, valid 100 years), for the local TLS server of the h2 test.
const TEST_KEY = [
  "-----BEGIN PRIVATE KEY-----",
  "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgb3m9gO1B9QKBC29m",
  "y+RZHkN1047ILKi9NHi5pJ8aUyehRANCAASFMGcB8XUBK8wZUw//4hnT+daQF6xi",
  "UVq1CkOGiPTb1dTPL82WFwQQ7JULXg7SYlJg7kRCaYSd9sPsDKak2YKI",
  "-----END PRIVATE KEY-----",
].join("\n");
const TEST_CERT = [
  "-----BEGIN CERTIFICATE-----",
  "MIIBkTCCATagAwIBAgIUH8kic4b9poBQ8ULZblLWxt9XTnowCgYIKoZIzj0EAwIw",
  "FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNjAyMzYxOFoYDzIxMjYxMTAy",
  "MDIzNjE4WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO",
  "PQMBBwNCAASFMGcB8XUBK8wZUw//4hnT+daQF6xiUVq1CkOGiPTb1dTPL82WFwQQ",
  "7JULXg7SYlJg7kRCaYSd9sPsDKak2YKIo2QwYjAdBgNVHQ4EFgQUK4RIg7ZolUDy",
  "8rYS0CF2a7qJJDAwHwYDVR0jBBgwFoAUK4RIg7ZolUDy8rYS0CF2a7qJJDAwDwYD",
  "VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0kAMEYC",
  "IQDID/n3UtqLuhqKQ8Fr7QyvTjGWpCWp+KLUJWL+kCAibQIhAMBy0pNRvqWzZrEa",
  "EHWaI60fSyEMLTMtV7j+wbsVMoRA",
  "-----END CERTIFICATE-----",
].join("\n");

/**
 * The node built-ins a fresh process has loaded after importing the pool module (process.moduleLoadList: an
 * undocumented but long-standing property), and after also creating a pool and closing it.
 */
function builtinsLoadedByPool(): { imported: string[]; used: string[] } {
  const pool = new URL("../../../src/store/undici-pool.ts", import.meta.url).href;
  const script =
    `const { Pool } = await import(${JSON.stringify(pool)});` +
    "const imported = [...process.moduleLoadList];" +
    'await new Pool("http://127.0.0.1:9").close();' +
    "console.log(JSON.stringify({ imported, used: process.moduleLoadList }));";
  const output = execFileSync(process.execPath, ["--import", import.meta.resolve("tsx"), "--input-type=module"], {
    input: script,
    encoding: "utf8",
  });
  return JSON.parse(output) as { imported: string[]; used: string[] };
}

test("the pool module does not load node:http2", () => {
  const { imported, used } = builtinsLoadedByPool();
  assert.ok(imported.includes("NativeModule http"), "the list shows the pool's built-ins");
  assert.not.ok(imported.includes("NativeModule http2"), "loading the pool loaded node:http2");
  assert.not.ok(used.includes("NativeModule http2"), "creating a pool loaded node:http2");
});

test("a connection that negotiates h2 goes through the real HTTP/2 client, loaded on first use", async () => {
  const { Pool } = await import("../../../src/store/undici-pool.js");
  const http2 = await import("node:http2");
  const versions: string[] = [];
  const server = http2.createSecureServer({ key: TEST_KEY, cert: TEST_CERT, allowHTTP1: true }, (req, res) => {
    versions.push(req.httpVersion);
    res.writeHead(200, { "content-type": "text/plain" }).end(`hello over ${req.httpVersion}`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const pool = new Pool(`https://127.0.0.1:${port}`, { allowH2: true, connect: { ca: TEST_CERT } });
  try {
    const response = await pool.request({ path: "/", method: "GET", signal: AbortSignal.timeout(5000) });
    assert.is(response.statusCode, 200);
    assert.is(await response.body.text(), "hello over 2.0");
    assert.equal(versions, ["2.0"]);
  } finally {
    await pool.close();
    await new Promise((resolve) => server.close(resolve));
  }
});

test.run();
