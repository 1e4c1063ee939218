// Printing for the client commands: etcdctl-like tables and simple lines for people, etcd-like JSON for scripts.
// IDs (lease, member, cluster) are 64-bit: they travel as decimal strings, are printed in hex like etcdctl
// (`694d5765fc71500b`), and in JSON are written as bare numbers exactly as etcdctl writes them.
import { StoreUnavailableError, UsageError, VigieError } from "../errors.js";
import { EtcdError, type KeyValue, type ResponseHeader, StoreClient } from "../store/client.js";
import type { ClientOptions } from "./options.js";

/** Decimal id string -> 16-digit lowercase hex (two's complement for negative ids, like Go's %016x of uint64). */
export function idToHex(decimal: string): string {
  return BigInt.asUintN(64, BigInt(decimal)).toString(16).padStart(16, "0");
}

/** Hex id typed by a user (`694d5765fc71500b`, with or without 0x) -> decimal string. */
export function hexToId(text: string, what: string): string {
  const hex = text.trim().replace(/^0x/i, "");
  if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) {
    throw new UsageError(`${what} expects a hexadecimal ID like 694d5765fc71500b, got "${text}"`);
  }
  return BigInt.asIntN(64, BigInt(`0x${hex}`)).toString(10);
}

const RAW_NUMBER = "\u0000raw:";

/** Marks a decimal id so `toJson` writes it as a bare JSON number (JS numbers would round ids above 2^53). */
export function rawNumber(decimal: string | number): string {
  return `${RAW_NUMBER}${decimal}`;
}

export function toJson(value: unknown): string {
  return JSON.stringify(value).replace(/"\\u0000raw:(-?\d+)"/g, "$1");
}

export function headerJson(header: ResponseHeader): Record<string, unknown> {
  return {
    cluster_id: rawNumber(header.clusterId),
    member_id: rawNumber(header.memberId),
    revision: header.revision,
    raft_term: header.raftTerm,
  };
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

/**
 * Runs `work` against the first endpoint that can be reached, in order. A store error (etcd's answer) is final and
 * printed with the endpoint that gave it; an unreachable endpoint moves on to the next one.
 */
export async function withStore<T>(
  options: ClientOptions,
  work: (client: StoreClient, endpoint: string) => Promise<T>,
): Promise<T> {
  const failures: string[] = [];
  for (const endpoint of options.endpoints) {
    const client = new StoreClient({ endpoints: [endpoint], requestTimeoutMs: options.timeoutMs });
    try {
      return await work(client, endpoint);
    } catch (error) {
      if (error instanceof EtcdError)
        throw new VigieError(error.code, `${endpoint}: ${error.message}`, { cause: error });
      if (!(error instanceof StoreUnavailableError)) throw error;
      failures.push(`${endpoint}: ${error.message}`);
    } finally {
      await client.close();
    }
  }
  throw new StoreUnavailableError(`no endpoint answered (${failures.join("; ")})`);
}
