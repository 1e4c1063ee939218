// Free loopback ports for servers that another process binds later (agents, etcd, nginx, haproxy).
//
// The port is NOT taken from the kernel's ephemeral range (listen on port 0): between our check and the real bind,
// the kernel hands that same port to the next listen(0) in this process (seen in CI: a test backend got the port
// just picked for haproxy's frontend, so haproxy could not bind it and the test's requests reached the backend
// directly) or to any outgoing connection. Ports below the ephemeral range are never handed out by the kernel on its
// own, so only another explicit bind can take them: the choice is random (parallel runs rarely meet), checked by a
// bind, and never repeated within this process.
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** Ports this process already handed out: a server started from one may not have bound it yet. */
const handedOut = new Set<number>();

const ATTEMPTS = 200;

/** The ports to choose from: the range just below the ephemeral one (Linux's default: 32768-60999). */
export function portRange(ephemeral = readEphemeralRange()): { low: number; high: number } {
  const [ephemeralLow, ephemeralHigh] = ephemeral;
  if (ephemeralLow > 12_000) return { low: Math.max(10_000, ephemeralLow - 16_000), high: ephemeralLow - 1 };
  if (ephemeralHigh < 63_000) return { low: ephemeralHigh + 1, high: 65_535 };
  // The ephemeral range covers nearly every port: only the bind check and the no-repeat rule remain.
  return { low: 10_000, high: 65_535 };
}

function readEphemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return [low!, high!];
  } catch {
    // Not Linux: assume the IANA range (macOS, BSD).
  }
  return [49_152, 65_535];
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  const { low, high } = portRange();
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (handedOut.has(port)) continue;
    if (await canBind(port, host)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port on ${host} in ${low}-${high} after ${ATTEMPTS} attempts`);
}

async function canBind(port: number, host: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Polls `probe` until it resolves truthy or the deadline passes; the last error is in the thrown message. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
}
