// Printing for the client commands: etcdctl-like tables and simple lines for people, etcd-like JSON for scripts.
// IDs (lease, member, cluster) are 64-bit: they travel as decimal strings, are printed in hex like etcdctl
// (`694d5765fc71500b`), and in JSON are written as bare numbers exactly as etcdctl writes them.
import { StoreUnavailableError, UsageError, VigieError } from "../errors.js";
import { EtcdError, isConnectionError, type KeyValue, type ResponseHeader, StoreClient } from "../store/client.js";
import type { ClientOptions } from "./options.js";

/** Decimal id string -> 16-digit lowercase hex (two's complement for negative ids, like Go's %016x of uint64). */
export function idToHex(decimal: string): string {
  return BigInt.asUintN(64, BigInt(decimal)).toString(16).padStart(16, "0");
}

/**
 * Hex id typed by a user (`694d5765fc71500b` as etcdctl prints it, 0x allowed) -> the decimal string the
 * API takes. Lease IDs are int64 in etcd (etcdctl refuses 8000000000000000 and above); member IDs are uint64 and
 * must stay unsigned: half of etcd's random member IDs are above 2^63, and etcd refuses a negative one.
 */
export function hexToId(text: string, what: string, kind: "lease" | "member" = "member"): string {
  const hex = text.trim().replace(/^0x/i, "");
  const valid = /^[0-9a-fA-F]{1,16}$/.test(hex) && (kind === "member" || !/^[89a-fA-F].{15}$/.test(hex));
  if (!valid) {
    throw new UsageError(`${what} expects a hexadecimal ID like 694d5765fc71500b, got "${text}"`);
  }
  return BigInt(`0x${hex}`).toString(10);
}

const RAW_NUMBER = "\u0000raw:";

/** Marks a decimal id so `toJson` writes it as a bare JSON number (JS numbers would round ids above 2^53). */
export function rawNumber(decimal: string | number): string {
  return `${RAW_NUMBER}${decimal}`;
}

export function toJson(value: unknown): string {
  return JSON.stringify(value).replace(/"\\u0000raw:(-?\d+)"/g, "$1");
}

/** etcd's ResponseHeader in JSON: every field is omitted when zero (member list answers carry no revision). */
export function headerJson(header: ResponseHeader): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (header.clusterId !== "0") out.cluster_id = rawNumber(header.clusterId);
  if (header.memberId !== "0") out.member_id = rawNumber(header.memberId);
  if (header.revision !== 0) out.revision = header.revision;
  if (header.raftTerm !== 0) out.raft_term = header.raftTerm;
  return out;
}

/** `lease grant` and `lease keep-alive` in JSON as etcdctl prints them: the header's fields inlined, then ID, TTL. */
export function leaseJson(header: ResponseHeader, id: string, ttlSeconds: number): Record<string, unknown> {
  return { ...headerJson(header), ID: rawNumber(id), TTL: ttlSeconds };
}

/** A key-value as etcdctl's JSON prints it: bytes base64, zero fields omitted. */
export function keyValueJson(kv: KeyValue): Record<string, unknown> {
  const out: Record<string, unknown> = { key: kv.key.toString("base64") };
  if (kv.createRevision !== 0) out.create_revision = kv.createRevision;
  if (kv.modRevision !== 0) out.mod_revision = kv.modRevision;
  if (kv.version !== 0) out.version = kv.version;
  if (kv.value.length > 0) out.value = kv.value.toString("base64");
  if (kv.lease !== "0") out.lease = rawNumber(kv.lease);
  return out;
}

/** An etcdctl-style boxed table. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const rule = `+${widths.map((width) => "-".repeat(width + 2)).join("+")}+`;
  const line = (cells: string[]) => `|${cells.map((cell, column) => ` ${cell.padEnd(widths[column]!)} `).join("|")}|`;
  return [rule, line(headers), rule, ...rows.map(line), rule].join("\n");
}

export function printLine(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Writes stored bytes as they are (keys and values need not be UTF-8), then a newline, like etcdctl. */
export function printBytesLine(bytes: Buffer): void {
  process.stdout.write(Buffer.concat([bytes, NEWLINE]));
}

const NEWLINE = Buffer.from("\n");

/** Standard input, byte for byte, refused with `tooLarge` past `maxBytes` (a value or request etcd would refuse). */
export async function readStdinAtMost(maxBytes: number, tooLarge: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let sizeBytes = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    sizeBytes += chunk.length;
    if (sizeBytes > maxBytes) throw new UsageError(tooLarge);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Ends a long-running command (watch, keep-alive) stopped by `signal` the way etcdctl ends: killed by that signal,
 * so a calling shell sees 130 for Ctrl-C and stops its script too. The command's own listeners are gone by now,
 * so the default action applies; the exit code returned is the fallback should another listener catch the signal.
 */
export function dieOfSignal(signal: "SIGINT" | "SIGTERM"): number {
  process.kill(process.pid, signal);
  return 128 + (signal === "SIGINT" ? 2 : 15);
}

/**
 * The largest answer the CLI accepts. The client's default (8 MiB) bounds what a long-running sidecar holds; a
 * one-shot `get --prefix` of a large keyspace should print it, as etcdctl does. 256 MiB stays clear of V8's string
 * limit (~512 MiB), which the answer's JSON text must fit in.
 */
const CLI_MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

/**
 * Runs `work` against the first endpoint that can be reached, in order. A store error (etcd's answer) is final and
 * printed with the endpoint that gave it; an unreachable endpoint moves on to the next one. A write whose
 * connection was lost after it was sent (the transport's "may or may not have been applied": its error keeps the
 * connection error as cause) is final too: sending it again elsewhere could apply it twice.
 */
export async function withStore<T>(
  options: ClientOptions,
  work: (client: StoreClient, endpoint: string) => Promise<T>,
): Promise<T> {
  const failures: string[] = [];
  for (const endpoint of options.endpoints) {
    const client = new StoreClient({
      endpoints: [endpoint],
      requestTimeoutMs: options.timeoutMs,
      maxResponseBytes: CLI_MAX_RESPONSE_BYTES,
    });
    try {
      return await work(client, endpoint);
    } catch (error) {
      if (error instanceof EtcdError)
        throw new VigieError(error.code, `${endpoint}: ${error.message}`, { cause: error });
      if (!(error instanceof StoreUnavailableError) || isConnectionError(error.cause)) throw error;
      failures.push(`${endpoint}: ${withoutEndpoint(error.message, endpoint)}`);
    } finally {
      await client.close();
    }
  }
  throw new StoreUnavailableError(`no endpoint answered (${failures.join("; ")})`);
}

/**
 * The cause alone from a transport failure about one endpoint: "store unreachable (URL: connect ECONNREFUSED ...)"
 * -> "connect ECONNREFUSED ...", so a message names each endpoint once instead of at every level of wrapping.
 */
export function withoutEndpoint(message: string, endpoint: string): string {
  let reason = message;
  for (const wrapper of [/^no endpoint answered \((.*)\)$/s, /^store unreachable \((.*)\)$/s]) {
    reason = reason.replace(wrapper, "$1");
    if (reason.startsWith(`${endpoint}: `)) reason = reason.slice(endpoint.length + 2);
  }
  return reason;
}
