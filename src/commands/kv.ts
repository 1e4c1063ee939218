// `vigie get | put | del | watch`: key-value commands against any member of the cluster (or etcd).
// Simple output is etcdctl's: one line with the key, one with the value; `-w json` prints etcd-like JSON.
import { EXIT_FAILURE, EXIT_OK, StoreUnavailableError } from "../errors.js";
import { isConnectionError, type KeyValue, type WatchResponse } from "../store/client.js";
import type { DelOptions, GetOptions, PutOptions, WatchOptions } from "./options.js";
import { headerJson, hexToId, keyValueJson, printLine, rawNumber, toJson, withStore } from "./output.js";

function printKeyValue(kv: KeyValue, keysOnly = false): void {
  printLine(kv.key.toString("utf8"));
  if (!keysOnly) printLine(kv.value.toString("utf8"));
}

export async function runGet(key: string, options: GetOptions): Promise<number> {
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
  for (const kv of result.kvs) printKeyValue(kv, options.keysOnly);
  return EXIT_OK;
}

export async function runPut(key: string, value: string, options: PutOptions): Promise<number> {
  const lease = options.lease === undefined ? undefined : hexToId(options.lease, "--lease");
  const result = await withStore(options, (client) =>
    client.put(key, value, { prevKv: options.prevKv, ...(lease === undefined ? {} : { lease }) }),
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

export async function runDel(key: string, options: DelOptions): Promise<number> {
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

function watchResponseJson(response: WatchResponse): Record<string, unknown> {
  const out: Record<string, unknown> = { Header: headerJson(response.header) };
  out.Events = response.events.map((event) => {
    const item: Record<string, unknown> = { kv: keyValueJson(event.kv) };
    if (event.type === "DELETE") item.type = 1;
    if (event.prevKv !== undefined) item.prev_kv = keyValueJson(event.prevKv);
    return item;
  });
  out.CompactRevision = response.compactRevision;
  out.Canceled = response.canceled;
  out.Created = response.created;
  out.watch_id = rawNumber(response.watchId);
  return out;
}

/**
 * Prints events until SIGINT/SIGTERM (exit 0). If the member goes away the watch resumes on the next endpoint
 * from the revision after the last one printed, so no event is shown twice or lost.
 */
export async function runWatch(key: string, options: WatchOptions): Promise<number> {
  let stopped = false;
  let current: { cancel(): void } | undefined;
  const stop = () => {
    stopped = true;
    current?.cancel();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  let nextRevision = options.rev;
  const printWatch = async (stream: AsyncIterable<WatchResponse>): Promise<number> => {
    for await (const response of stream) {
      if (response.canceled) {
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
  try {
    for (let attempt = 0; !stopped; attempt++) {
      try {
        const outcome = await withStore(options, async (client) => {
          const stream = client.watch(key, {
            prefix: options.prefix,
            prevKv: options.prevKv,
            ...(nextRevision === undefined ? {} : { startRevision: nextRevision }),
          });
          current = stream;
          if (stopped) stream.cancel();
          try {
            return await printWatch(stream);
          } catch (error) {
            // A stream cut mid-way surfaces as the socket's own error: make it "unavailable" so the next
            // endpoint is tried.
            if (isConnectionError(error)) {
              throw new StoreUnavailableError(`${(error as Error).message}`, { cause: error });
            }
            throw error;
          }
        });
        if (outcome !== EXIT_OK || stopped) return outcome;
      } catch (error) {
        // A dropped stream: retry (bounded) on the endpoints, resuming after the last printed event.
        if (!(error instanceof StoreUnavailableError) || stopped || attempt >= 10) throw error;
        process.stderr.write(`vigie: watch interrupted (${error.message}); reconnecting\n`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 100 * 2 ** attempt)));
      }
    }
    return EXIT_OK;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}
