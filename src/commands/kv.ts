// `vigie get | put | del | watch`: key-value commands against any member of the cluster (or etcd).
// Simple output is etcdctl's: one line with the key, one with the value; `-w json` prints etcd-like JSON.
// Keys and values are bytes, not text: they are printed as stored, and read from the command line as the kernel
// passed them (Node decodes argv as UTF-8 and would turn other bytes into U+FFFD).
import { readFileSync } from "node:fs";
import { EXIT_FAILURE, EXIT_OK, StoreUnavailableError, UsageError } from "../errors.js";
import { isConnectionError, type KeyValue, type WatchResponse } from "../store/client.js";
import type { DelOptions, GetOptions, PutOptions, WatchOptions } from "./options.js";
import {
  dieOfSignal,
  headerJson,
  hexToId,
  keyValueJson,
  printBytesLine,
  printLine,
  readStdinAtMost,
  toJson,
  withStore,
} from "./output.js";

/** etcd's request limit: a value read from stdin beyond it could never be stored, so reading stops there. */
const STDIN_VALUE_MAX_BYTES = 1.5 * 1024 * 1024;
/**
 * A watch stream quiet for this long gets its member asked for its status (the sidecar's interval): etcdctl notices a
 * frozen member through gRPC keepalive (every 2 s, 6 s timeout) and moves on; without this a frozen member (stopped,
 * or its host gone with the TCP connection still open) kept the watch forever.
 */
const WATCH_PROBE_INTERVAL_MS = 5_000;

/**
 * etcdctl's lines: the key, then the value, even when empty (a deleted key in `watch`); with --keys-only, the key
 * and an empty line. Scripts written for etcdctl count the lines.
 */
function printKeyValue(kv: KeyValue, keysOnly = false): void {
  printBytesLine(kv.key);
  printBytesLine(keysOnly ? Buffer.alloc(0) : kv.value);
}

/**
 * The bytes of a command-line argument. Node replaced any byte sequence that is not UTF-8 with U+FFFD, so such an
 * argument is looked up in /proc/self/cmdline (Linux), whose entries are the raw bytes the program was given.
 */
export function argumentBytes(text: string): Buffer {
  const decoded = Buffer.from(text, "utf8");
  if (!text.includes("\uFFFD")) return decoded;
  let raw: Buffer[];
  try {
    const cmdline = readFileSync("/proc/self/cmdline");
    raw = [];
    for (let start = 0; start < cmdline.length; ) {
      const end = cmdline.indexOf(0, start);
      raw.push(cmdline.subarray(start, end === -1 ? cmdline.length : end));
      start = end === -1 ? cmdline.length : end + 1;
    }
  } catch {
    return decoded; // no /proc: the decoded text is all there is
  }
  const candidates = raw.filter((bytes) => bytes.toString("utf8") === text);
  const first = candidates[0];
  if (first === undefined) return decoded;
  if (candidates.some((bytes) => !bytes.equals(first))) {
    throw new UsageError(
      `two arguments decode to "${text}" but differ in their bytes: give the value on standard input instead`,
    );
  }
  return first;
}

/** `put KEY` without VALUE reads the value from standard input, byte for byte (a trailing newline is kept). */
async function readValueFromStdin(): Promise<Buffer> {
  const missing = "put needs VALUE, as an argument or on standard input";
  if (process.stdin.isTTY) throw new UsageError(missing);
  const value = await readStdinAtMost(
    STDIN_VALUE_MAX_BYTES,
    `put: the value on standard input is larger than ${STDIN_VALUE_MAX_BYTES} bytes`,
  );
  if (value.length === 0) throw new UsageError(missing);
  return value;
}

export async function runGet(keyText: string, options: GetOptions): Promise<number> {
  const key = argumentBytes(keyText);
  const result = await withStore(options, (client) =>
    client.range(key, {
      prefix: options.prefix,
      keysOnly: options.keysOnly,
      serializable: options.serializable,
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      ...(options.rev === undefined ? {} : { revision: options.rev }),
    }),
  );
  if (options.writeOut === "json") {
    const out: Record<string, unknown> = { header: headerJson(result.header) };
    if (result.kvs.length > 0) out.kvs = result.kvs.map(keyValueJson);
    if (result.more) out.more = true;
    if (result.count !== 0) out.count = result.count;
    printLine(toJson(out));
    return EXIT_OK;
  }
  for (const kv of result.kvs) {
    if (options.valueOnly) printBytesLine(kv.value);
    else printKeyValue(kv, options.keysOnly);
  }
  return EXIT_OK;
}

/** VALUE as given, or standard input when it was not. */
async function givenValue(valueText: string | undefined): Promise<Buffer> {
  return valueText === undefined ? await readValueFromStdin() : argumentBytes(valueText);
}

export async function runPut(keyText: string, valueText: string | undefined, options: PutOptions): Promise<number> {
  if (options.ignoreValue && valueText !== undefined)
    throw new UsageError("put --ignore-value takes no VALUE: the key keeps the value it has");
  if (options.ignoreLease && options.lease !== undefined)
    throw new UsageError("put --ignore-lease takes no --lease: the key keeps the lease it has");
  const lease = options.lease === undefined ? undefined : hexToId(options.lease, "--lease", "lease");
  const key = argumentBytes(keyText);
  // --ignore-value sends an empty value, as etcd requires; the key keeps the one it has.
  const value = options.ignoreValue ? Buffer.alloc(0) : await givenValue(valueText);
  const result = await withStore(options, (client) =>
    client.put(key, value, {
      prevKv: options.prevKv,
      ignoreValue: options.ignoreValue,
      ignoreLease: options.ignoreLease,
      ...(lease === undefined ? {} : { lease }),
    }),
  );
  if (options.writeOut === "json") {
    const out: Record<string, unknown> = { header: headerJson(result.header) };
    if (result.prevKv !== undefined) out.prev_kv = keyValueJson(result.prevKv);
    printLine(toJson(out));
    return EXIT_OK;
  }
  printLine("OK");
  if (result.prevKv !== undefined) printKeyValue(result.prevKv);
  return EXIT_OK;
}

export async function runDel(keyText: string, options: DelOptions): Promise<number> {
  const key = argumentBytes(keyText);
  const result = await withStore(options, (client) =>
    client.deleteRange(key, { prefix: options.prefix, prevKv: options.prevKv }),
  );
  if (options.writeOut === "json") {
    const out: Record<string, unknown> = { header: headerJson(result.header) };
    if (result.deleted !== 0) out.deleted = result.deleted;
    if (result.prevKvs.length > 0) out.prev_kvs = result.prevKvs.map(keyValueJson);
    printLine(toJson(out));
    return EXIT_OK;
  }
  printLine(String(result.deleted));
  for (const kv of result.prevKvs) printKeyValue(kv);
  return EXIT_OK;
}

/** One watch response as etcdctl prints it (clientv3's WatchResponse: no watch id; an event's type first). */
function watchResponseJson(response: WatchResponse): Record<string, unknown> {
  const events = response.events.map((event) => {
    const item: Record<string, unknown> = event.type === "DELETE" ? { type: 1 } : {};
    item.kv = keyValueJson(event.kv);
    if (event.prevKv !== undefined) item.prev_kv = keyValueJson(event.prevKv);
    return item;
  });
  return {
    Header: headerJson(response.header),
    Events: events,
    CompactRevision: response.compactRevision,
    Canceled: response.canceled,
    Created: response.created,
  };
}

/**
 * Prints events until SIGINT/SIGTERM, then dies of that signal like etcdctl. If the member goes away the watch
 * resumes on the next endpoint from the revision after the last one printed, so no event is shown twice or lost.
 */
export async function runWatch(keyText: string, options: WatchOptions): Promise<number> {
  const key = argumentBytes(keyText);
  let stopped: "SIGINT" | "SIGTERM" | undefined;
  let current: { cancel(): void } | undefined;
  let wakeFromBackoff: (() => void) | undefined;
  const stop = (signal: "SIGINT" | "SIGTERM") => {
    stopped = signal;
    current?.cancel();
    wakeFromBackoff?.();
  };
  const onInterrupt = () => stop("SIGINT");
  const onTerminate = () => stop("SIGTERM");
  process.once("SIGINT", onInterrupt);
  process.once("SIGTERM", onTerminate);
  let nextRevision = options.rev;
  /** Whether the current stream answered at all: a stream that did counts as a success for the retry budget. */
  let answered = false;
  /** When the current stream last showed its member alive (a message, or an answered probe). */
  let lastHeardAt = 0;
  const printWatch = async (stream: AsyncIterable<WatchResponse>): Promise<number> => {
    for await (const response of stream) {
      lastHeardAt = performance.now();
      answered = true;
      if (response.canceled) {
        // etcdctl prints the canceled answer too: a script reading JSON learns the compaction revision from it.
        if (options.writeOut === "json") printLine(toJson(watchResponseJson(response)));
        const reason =
          response.compactRevision > 0
            ? `watch canceled: revision ${nextRevision} is compacted (oldest is ${response.compactRevision})`
            : `watch canceled: ${response.cancelReason || "by the server"}`;
        process.stderr.write(`vigie: ${reason}\n`);
        return EXIT_FAILURE;
      }
      for (const event of response.events) nextRevision = event.kv.modRevision + 1;
      if (options.writeOut === "json") {
        if (!response.created) printLine(toJson(watchResponseJson(response)));
        continue;
      }
      // etcdctl's order: the event type, the previous key-value (with --prev-kv), then the new one.
      for (const event of response.events) {
        printLine(event.type);
        if (event.prevKv !== undefined) printKeyValue(event.prevKv);
        printKeyValue(event.kv, event.type === "DELETE");
      }
    }
    return EXIT_OK;
  };
  const watchUntilStopped = async (): Promise<number> => {
    // Reconnects in a row that got no answer: bounded, and reset by a stream that answered, so a watch that runs
    // for days survives any number of interruptions spread over time.
    let failures = 0;
    while (!stopped) {
      answered = false;
      try {
        const outcome = await withStore(options, async (client) => {
          const stream = client.watch(key, {
            prefix: options.prefix,
            prevKv: options.prevKv,
            ...(nextRevision === undefined ? {} : { startRevision: nextRevision }),
          });
          current = stream;
          if (stopped) stream.cancel();
          lastHeardAt = performance.now();
          let frozen: Error | undefined;
          let probing = false;
          const prober = setInterval(() => {
            if (probing || performance.now() - lastHeardAt < WATCH_PROBE_INTERVAL_MS) return;
            probing = true;
            stream.probe().then(
              () => {
                lastHeardAt = performance.now();
                probing = false;
              },
              (error: unknown) => {
                frozen = error as Error;
                stream.cancel();
              },
            );
          }, WATCH_PROBE_INTERVAL_MS / 5);
          try {
            const outcome = await printWatch(stream);
            // Canceled because its member did not answer: the next endpoint takes over from the same revision.
            if (frozen !== undefined && !stopped) {
              throw new StoreUnavailableError(`the member serving the watch did not answer (${frozen.message})`);
            }
            return outcome;
          } catch (error) {
            // A stream cut mid-way surfaces as the socket's own error: make it "unavailable" so the next
            // endpoint is tried (without it as cause: withStore reads that as a write that may have applied).
            if (isConnectionError(error)) throw new StoreUnavailableError((error as Error).message);
            throw error;
          } finally {
            clearInterval(prober);
          }
        });
        if (outcome !== EXIT_OK || stopped) return outcome;
      } catch (error) {
        // A dropped stream: retry (bounded) on the endpoints, resuming after the last printed event.
        if (answered) failures = 0;
        if (!(error instanceof StoreUnavailableError) || stopped || failures >= 10) throw error;
        process.stderr.write(`vigie: watch interrupted (${error.message}); reconnecting\n`);
        const backoffMs = Math.min(2_000, 100 * 2 ** failures);
        failures++;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoffMs);
          wakeFromBackoff = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
    return EXIT_OK;
  };
  let outcome: number;
  try {
    outcome = await watchUntilStopped();
  } catch (error) {
    if (stopped === undefined) throw error;
    outcome = EXIT_OK; // failed while stopping: the signal decides how the command ends
  } finally {
    process.off("SIGINT", onInterrupt);
    process.off("SIGTERM", onTerminate);
  }
  return stopped === undefined ? outcome : dieOfSignal(stopped);
}
