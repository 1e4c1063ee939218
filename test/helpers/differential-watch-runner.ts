// Runs one differential-watch scenario (differential-watch-scenario.ts) against one etcd v3 JSON gateway and
// returns what it saw, normalised so that two targets fed the same writes compare equal: header ids and term
// removed after checking their shape, every revision relative to the run's first one, and the stream's answers
// grouped by watch id (etcd orders the answers of different watchers at random; one watcher's are in order).
import assert from "node:assert";
import { call, StreamSession, untilWatchersSynced } from "./api-client.js";
import { b64 } from "./api-expect.js";
import type { CreateMessage, Scenario, StreamMessage, WriteOp } from "./differential-watch-scenario.js";

export interface RunTiming {
  /** Wait after the body ends before the live writes (etcd syncs a watcher from the past every 100 ms). */
  settleMs: number;
  /** The stream is done once nothing arrived for this long after the last write. */
  quietMs: number;
}

export const DEFAULT_TIMING: RunTiming = { settleMs: 250, quietMs: 150 };
/** A run never collects longer than this after its last write (a target that streams forever fails the run). */
const COLLECT_MAX_MS = 3_000;
/** How long a stream may take to answer its first request (the first answer comes at once on an idle machine). */
const FIRST_ANSWER_MAX_MS = 1_000;
const LEASE_TTL = "600";
const REVISION_FIELDS = new Set(["revision", "create_revision", "mod_revision", "compact_revision"]);

export interface Observation {
  /** Each write's HTTP status and normalised body, history first. */
  writes: string[];
  /** HTTP status of the watch stream (undefined: no answer at all). */
  status: number | undefined;
  /** The stream's `result` messages by watch id, each watcher's in order. */
  byWatchId: Record<string, unknown[]>;
  /** Lines that were not `{"result":...}` (error bodies, stream error lines). */
  otherLines: unknown[];
  /** Whether the server ended the stream on its own. */
  ended: boolean;
}

/** Run-specific names: the key prefix and the lease id (both targets get the same). */
export interface RunNames {
  prefix: string;
  leaseId: string;
}

export function runNames(runIndex: number): RunNames {
  return { prefix: `/dw/${String(runIndex).padStart(5, "0")}/`, leaseId: String(900_000 + runIndex) };
}

export async function currentRevision(url: string): Promise<number> {
  const answer = await call(url, "/v3/kv/range", { key: b64("/dw-none") });
  const revision = (answer.json?.header as { revision?: string } | undefined)?.revision;
  assert.match(String(revision), /^\d+$/, `${url} answers a range: ${answer.text}`);
  return Number(revision);
}

export async function runScenario(
  url: string,
  scenario: Scenario,
  names: RunNames,
  timing: RunTiming = DEFAULT_TIMING,
): Promise<Observation> {
  const grant = await call(url, "/v3/lease/grant", { ID: names.leaseId, TTL: LEASE_TTL });
  assert.equal(grant.status, 200, `lease grant: ${grant.text}`);
  const base = await currentRevision(url);
  const writes: string[] = [];
  for (const op of scenario.history) writes.push(await write(url, op, names, base));
  const stream = new StreamSession(url, "/v3/watch");
  try {
    stream.send(streamChunk(scenario.messages, names, base));
    stream.finish();
    const early = await settle(stream, timing);
    // A watcher from the past that etcd has not synced yet would get the live writes late, or in other batches.
    await untilWatchersSynced(url, 0);
    for (const op of scenario.live) writes.push(await write(url, op, names, base));
    const lines = [...early, ...(await collect(stream, timing.quietMs))];
    return { writes, status: stream.status, ...group(lines, base), ended: stream.hasEnded };
  } finally {
    stream.close();
    // The lease would expire (and delete its keys) at a different time on each target: revoke it now.
    await call(url, "/v3/lease/revoke", { ID: names.leaseId });
  }
}

/** Every request message of the stream in one write (see differential-watch-scenario.ts on why). */
export function streamChunk(messages: StreamMessage[], names: RunNames, base: number): string {
  return messages
    .map((message) => {
      switch (message.type) {
        case "create":
          return JSON.stringify(createRequest(message, names, base));
        case "cancel":
          return JSON.stringify({ cancel_request: { watch_id: String(message.watchId) } });
        case "progress":
          return JSON.stringify({ progress_request: {} });
        case "empty":
          return "{}";
        case "unknown-field":
          return JSON.stringify({ create_request: { key: b64(`${names.prefix}a`), no_such_field: 1 } });
        default:
          return message.text; // malformed
      }
    })
    .join("\n");
}

function createRequest(message: CreateMessage, names: RunNames, base: number): object {
  const key = `${names.prefix}${message.key}`;
  const fields: Array<[string, string, unknown]> = [];
  const add = (proto: string, camel: string, value: unknown) => fields.push([proto, camel, value]);
  switch (message.range.kind) {
    case "single":
      add("key", "key", b64(key));
      break;
    case "prefix":
      add("key", "key", b64(key));
      add("range_end", "rangeEnd", b64(prefixEnd(key)));
      break;
    case "from-key":
      add("key", "key", b64(key));
      add("range_end", "rangeEnd", "AA==");
      break;
    case "to":
      add("key", "key", b64(key));
      add("range_end", "rangeEnd", b64(`${names.prefix}${message.range.end}`));
      break;
    case "all":
      add("key", "key", "");
      add("range_end", "rangeEnd", "AA==");
      break;
  }
  if (message.start.kind === "rel") add("start_revision", "startRevision", String(base + message.start.at));
  if (message.start.kind === "negative") add("start_revision", "startRevision", "-2");
  if (message.prevKv) add("prev_kv", "prevKv", true);
  if (message.filters) add("filters", "filters", message.filters);
  if (message.progressNotify) add("progress_notify", "progressNotify", true);
  if (message.fragment) add("fragment", "fragment", true);
  if (message.watchId !== undefined) add("watch_id", "watchId", String(message.watchId));
  const body: Record<string, unknown> = {};
  for (const [proto, camel, value] of fields) body[message.camel ? camel : proto] = value;
  return message.camel ? { createRequest: body } : { create_request: body };
}

function prefixEnd(key: string): string {
  return key.slice(0, -1) + String.fromCharCode(key.charCodeAt(key.length - 1) + 1);
}

/** Performs one write; returns its status and normalised answer (the unary API is compared too). */
async function write(url: string, op: WriteOp, names: RunNames, base: number): Promise<string> {
  const key = (name: string) => b64(`${names.prefix}${name}`);
  let answer: Awaited<ReturnType<typeof call>>;
  switch (op.op) {
    case "put":
      answer = await call(url, "/v3/kv/put", {
        key: key(op.key),
        ...(op.ignoreValue ? { ignore_value: true } : { value: b64(op.value) }),
        ...(op.lease ? { lease: names.leaseId } : {}),
      });
      break;
    case "delete":
      answer = await call(url, "/v3/kv/deleterange", {
        key: key(op.key),
        ...(op.prefix ? { range_end: b64(prefixEnd(`${names.prefix}${op.key}`)) } : {}),
      });
      break;
    case "txn":
      answer = await call(url, "/v3/kv/txn", {
        success: op.ops.map((one) =>
          one.delete
            ? { request_delete_range: { key: key(one.key) } }
            : { request_put: { key: key(one.key), value: b64(op.value) } },
        ),
      });
      break;
    case "revoke":
      answer = await call(url, "/v3/lease/revoke", { ID: names.leaseId });
      break;
    case "compact":
      answer = await call(url, "/v3/kv/compaction", { revision: String(base + op.at) });
      break;
  }
  return `${op.op} ${answer.status} ${JSON.stringify(normalise(answer.json ?? answer.text, base))}`;
}

/**
 * Waits until the stream has answered its requests (etcd answers only once the body ended, and a loaded machine
 * can delay either target): up to FIRST_ANSWER_MAX_MS for a first line, then until it is quiet, and at least
 * `settleMs` in all. Returns the lines read.
 */
async function settle(stream: StreamSession, timing: RunTiming): Promise<string[]> {
  const started = Date.now();
  const lines: string[] = [];
  let waitMs = FIRST_ANSWER_MAX_MS;
  for (;;) {
    let line: string | undefined;
    try {
      line = await stream.nextLine(Math.max(waitMs, timing.settleMs - (Date.now() - started)));
    } catch {
      return lines; // quiet
    }
    if (line === undefined) return lines; // ended
    lines.push(line);
    waitMs = timing.quietMs;
    if (Date.now() - started > COLLECT_MAX_MS) return lines;
  }
}

async function collect(stream: StreamSession, quietMs: number): Promise<string[]> {
  const lines: string[] = [];
  const deadline = Date.now() + COLLECT_MAX_MS;
  while (Date.now() < deadline) {
    let line: string | undefined;
    try {
      line = await stream.nextLine(quietMs);
    } catch {
      return lines; // quiet
    }
    if (line === undefined) return lines; // ended
    lines.push(line);
  }
  throw new Error(`the stream was still sending after ${COLLECT_MAX_MS} ms: ${lines.slice(-3).join("\n")}`);
}

function group(lines: string[], base: number): Pick<Observation, "byWatchId" | "otherLines"> {
  const byWatchId: Record<string, unknown[]> = {};
  const otherLines: unknown[] = [];
  for (const line of lines) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      otherLines.push(line);
      continue;
    }
    const result = (parsed as { result?: Record<string, unknown> }).result;
    if (result === undefined || typeof result !== "object") {
      otherLines.push(normalise(parsed, base));
      continue;
    }
    const id = String(result.watch_id ?? "0");
    const messages = byWatchId[id] ?? [];
    messages.push(normalise(result, base));
    byWatchId[id] = messages;
  }
  return { byWatchId, otherLines };
}

/** Drops header ids and term (checked to be decimal strings) and makes every revision relative to `base`. */
export function normalise(value: unknown, base: number): unknown {
  if (Array.isArray(value)) return value.map((inner) => normalise(inner, base));
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    if (key === "cluster_id" || key === "member_id" || key === "raft_term") {
      assert.match(String(inner), /^\d+$/, `${key} is a decimal string`);
      continue;
    }
    if (REVISION_FIELDS.has(key) && typeof inner === "string" && /^-?\d+$/.test(inner)) {
      out[key] = `r${Number(inner) - base}`;
      continue;
    }
    out[key] = normalise(inner, base);
  }
  return out;
}
