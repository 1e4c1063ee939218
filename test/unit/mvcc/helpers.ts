// Shared helpers for the key-space tests: a store that applies commands with increasing Raft indexes and
// returns the response (or throws the etcd error), and short constructors for requests.
import type { Command, CommandResponseMap, KeyValue, RequestOp } from "../../../src/store/mvcc/commands.js";
import { KvStore, type KvStoreOptions } from "../../../src/store/mvcc/kv-store.js";

export const b = (text: string): Buffer => Buffer.from(text);
export const s = (bytes: Uint8Array | undefined): string => Buffer.from(bytes ?? new Uint8Array(0)).toString();

export class TestStore {
  readonly store: KvStore;
  private index = 0;
  nowMs = 1_000_000;

  constructor(options: Partial<KvStoreOptions> = {}) {
    this.store = new KvStore({ clock: () => this.nowMs, ...options });
  }

  /** Applies and returns the response; throws the MvccError on failure. */
  run<C extends Command>(command: C): CommandResponseMap[C["type"]] {
    const result = this.store.apply(command, ++this.index);
    if (!result.ok) throw result.error;
    return result.response as CommandResponseMap[C["type"]];
  }

  /** Applies and returns the error (fails the test if it succeeded). */
  fail(command: Command): Error {
    const result = this.store.apply(command, ++this.index);
    if (result.ok) throw new Error(`expected ${command.type} to fail`);
    return result.error;
  }

  put(key: string, value: string, extra: { lease?: number; prev_kv?: boolean } = {}) {
    return this.run({ type: "put", request: { key: b(key), value: b(value), ...extra } });
  }

  del(key: string, rangeEnd?: string) {
    return this.run({
      type: "deleteRange",
      request:
        rangeEnd === undefined
          ? { key: b(key), prev_kv: true }
          : { key: b(key), range_end: b(rangeEnd), prev_kv: true },
    });
  }

  get(key: string): KeyValue | undefined {
    return this.store.range({ key: b(key) }).kvs[0];
  }

  value(key: string): string | undefined {
    const kv = this.get(key);
    return kv === undefined ? undefined : s(kv.value);
  }

  keys(prefix = "\0"): string[] {
    const end =
      prefix === "\0"
        ? b("\0")
        : b(prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1));
    return this.store.range({ key: b(prefix), range_end: end }).kvs.map((kv) => s(kv.key));
  }
}

export const putOp = (key: string, value: string): RequestOp => ({ request_put: { key: b(key), value: b(value) } });
export const delOp = (key: string, rangeEnd?: string): RequestOp => ({
  request_delete_range: rangeEnd === undefined ? { key: b(key) } : { key: b(key), range_end: b(rangeEnd) },
});
export const getOp = (key: string): RequestOp => ({ request_range: { key: b(key) } });
