// One run of a service's health check: `http` (a 2xx answer), `tcp` (a connection accepted) or `exec` (a program
// that exits 0). Every run is bounded by the check's timeout, never throws, and returns a short reason for logs and
// `vigie services`. Programs run from an argv array without a shell: nothing from config or store is interpreted.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { Agent, request } from "undici";
import type { HealthCheckConfig } from "../config/schema.js";
import { runArgv } from "../render/run.js";

export interface CheckResult {
  passing: boolean;
  /** Why, in one line: `HTTP 200`, `connect ECONNREFUSED`, `exit 1: <stderr tail>`, `timed out after 500 ms`. */
  output: string;
  durationMs: number;
}

/** The longest output kept from an exec check (stdout + stderr tail) or an HTTP error body. */
const OUTPUT_MAX_CHARS = 256;
/** An HTTP check reads at most this much of the body before closing: health answers are small. */
const HTTP_BODY_MAX_BYTES = 64 * 1024;

/**
 * Health checks get their own connection pool without keep-alive: a check must prove that the backend still accepts
 * connections, and a pooled socket to a half-dead process would hide that.
 */
const checkDispatcher = new Agent({ pipelining: 0, connections: 64, keepAliveTimeout: 1 });

export async function runCheck(check: HealthCheckConfig): Promise<CheckResult> {
  assert.ok(check.timeout > 0, "a health check needs a positive timeout");
  const startedAt = performance.now();
  let outcome: { passing: boolean; output: string };
  if (check.http !== undefined) outcome = await httpCheck(check.http, check.timeout);
  else if (check.tcp !== undefined) outcome = await tcpCheck(check.tcp, check.timeout);
  else if (check.exec !== undefined) outcome = await execCheck(check.exec, check.timeout);
  else assert.fail("the config schema guarantees exactly one of http, tcp or exec");
  return { ...outcome, durationMs: Math.round(performance.now() - startedAt) };
}

async function httpCheck(url: string, timeoutMs: number): Promise<{ passing: boolean; output: string }> {
  try {
    const response = await request(url, {
      method: "GET",
      dispatcher: checkDispatcher,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      // The overall bound: connect + headers + body together must fit in the timeout.
      signal: AbortSignal.timeout(timeoutMs),
      headers: { "user-agent": "vigie-health-check" },
    });
    const status = response.statusCode;
    await response.body.dump({ limit: HTTP_BODY_MAX_BYTES }).catch(() => undefined);
    return { passing: status >= 200 && status < 300, output: `HTTP ${status}` };
  } catch (error) {
    return { passing: false, output: describeError(error, timeoutMs) };
  }
}

/** `host:port`, with IPv6 hosts in brackets (`[::1]:8080`). */
export function splitHostPort(address: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:]+)\]|([^:\s]+)):(\d{1,5})$/.exec(address);
  if (!match) throw new Error(`"${address}" is not host:port`);
  const port = Number(match[3]);
  if (port < 1 || port > 65535) throw new Error(`"${address}": port ${port} is out of range 1-65535`);
  return { host: match[1] ?? match[2]!, port };
}

async function tcpCheck(address: string, timeoutMs: number): Promise<{ passing: boolean; output: string }> {
  let target: { host: string; port: number };
  try {
    target = splitHostPort(address);
  } catch (error) {
    return { passing: false, output: (error as Error).message };
  }
  return await new Promise((resolve) => {
    const socket = connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => finish(false, `connect timed out after ${timeoutMs} ms`), timeoutMs);
    function finish(passing: boolean, output: string): void {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on("error", () => undefined);
      socket.destroy();
      resolve({ passing, output });
    }
    socket.once("connect", () => finish(true, `connected to ${address}`));
    socket.once("error", (error) => finish(false, describeError(error, timeoutMs)));
  });
}

async function execCheck(argv: string[], timeoutMs: number): Promise<{ passing: boolean; output: string }> {
  assert.ok(argv.length > 0, "the config schema guarantees a non-empty argv");
  // A check that hangs is a failing check; runArgv kills its whole process group so it cannot pile up across intervals.
  const result = await runArgv(argv, { timeoutMs });
  const tail = result.output.trim().replace(/\s+/g, " ").slice(-OUTPUT_MAX_CHARS);
  if (result.timedOut || tail === "") return { passing: result.ok, output: result.status };
  return { passing: result.ok, output: `${result.status}: ${tail}` };
}

function describeError(error: unknown, timeoutMs: number): string {
  const named = error as { name?: string; code?: string; message?: string };
  if (
    named.name === "TimeoutError" ||
    named.code === "UND_ERR_HEADERS_TIMEOUT" ||
    named.code === "UND_ERR_BODY_TIMEOUT"
  )
    return `timed out after ${timeoutMs} ms`;
  if (named.code === "UND_ERR_CONNECT_TIMEOUT") return `connect timed out after ${timeoutMs} ms`;
  const text = named.code ? `${named.code} ${named.message ?? ""}` : String(named.message ?? error);
  return text.trim().slice(0, OUTPUT_MAX_CHARS);
}
