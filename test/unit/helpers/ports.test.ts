// The test port picker: its ports must not be ones the kernel hands to listen(0) or to outgoing connections, and
// it must never give the same port twice (a server started from the first may not have bound it yet).
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { freePort, portRange } from "../../helpers/ports.js";

test("the ports are chosen beside the kernel's ephemeral range", () => {
  assert.equal(portRange([32768, 60999]), { low: 16768, high: 32767 });
  assert.equal(portRange([49152, 65535]), { low: 33152, high: 49151 });
  assert.equal(portRange([1024, 30000]), { low: 30001, high: 65535 });
  assert.equal(portRange([1024, 65535]), { low: 10000, high: 65535 });
});

test("freePort never repeats a port and never picks one listen(0) could get", async () => {
  const linuxRange = (() => {
    try {
      return readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    } catch {
      return undefined;
    }
  })();
  const seen = new Set<number>();
  for (let i = 0; i < 100; i++) {
    const port = await freePort();
    assert.not.ok(seen.has(port), `port ${port} handed out twice`);
    seen.add(port);
    if (linuxRange !== undefined && linuxRange[0]! > 12_000) {
      assert.ok(port < linuxRange[0]!, `port ${port} is in the ephemeral range ${linuxRange.join("-")}`);
    }
    // What the kernel gives the next listen(0) is never the port just picked (the failure seen in CI).
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    await new Promise((resolve) => server.close(resolve));
    assert.ok(address !== null && typeof address === "object" && address.port !== port);
  }
});

test("freePort's port can be bound right away, on IPv4 and IPv6 loopback", async () => {
  for (const host of ["127.0.0.1", "::1"]) {
    const port = await freePort(host).catch(() => undefined);
    if (port === undefined) continue; // no IPv6 loopback on this machine
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, resolve);
    });
    await new Promise((resolve) => server.close(resolve));
  }
});

test.run();
