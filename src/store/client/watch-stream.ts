// One `/v3/watch` stream: a long chunked response carrying newline-delimited `{"result": WatchResponse}` messages.
// Exposed as an async iterable of decoded responses plus `cancel()`. Reconnecting is the caller's job
// (src/watch/ knows which revision to resume from); this file only speaks the wire protocol.
import { StoreUnavailableError } from "../../errors.js";
import type { Transport } from "./transport.js";
import {
  type Bytes,
  decodeHeader,
  decodeInt,
  decodeKeyValue,
  EtcdError,
  encodeRange,
  type KeyValue,
  type ResponseHeader,
  type WireObject,
} from "./wire.js";

export interface WatchOptions {
  prefix?: boolean;
  rangeEnd?: Bytes;
  /** First revision to deliver (inclusive). Omitted: changes after the watch is created. */
  startRevision?: number;
  prevKv?: boolean;
  /** Ask the store for periodic empty responses that carry its current revision. */
  progressNotify?: boolean;
  /** Largest single message accepted (default 8 MiB). */
  maxMessageBytes?: number;
}

export interface WatchEvent {
  type: "PUT" | "DELETE";
  /** For a DELETE, only `key` and `modRevision` are set (the revision of the delete). */
  kv: KeyValue;
  prevKv: KeyValue | undefined;
}

export interface WatchResponse {
  header: ResponseHeader;
  watchId: string;
  created: boolean;
  canceled: boolean;
  /** Set when the watch was canceled because its start revision is compacted: resync from the present. */
  compactRevision: number;
  cancelReason: string;
  events: WatchEvent[];
}

export class WatchStream implements AsyncIterable<WatchResponse> {
  private readonly abort = new AbortController();
  private started = false;
  private userCanceled = false;
  /** The endpoint that answered the watch request, once it did. */
  private servedBy: string | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly key: Bytes,
    private readonly options: WatchOptions,
  ) {}

  /** Ends the stream; a pending iteration finishes without error. */
  cancel(): void {
    this.userCanceled = true;
    this.abort.abort();
  }

  get canceled(): boolean {
    return this.userCanceled;
  }

  /** The endpoint (member) serving this stream; undefined until it answered the watch request. */
  get endpointUrl(): string | undefined {
    return this.servedBy;
  }

  /**
   * Tells the client to start its next request (such as this watch's reconnect) at another endpoint: the caller
   * found this stream's member unusable, e.g. behind what it already saw.
   */
  avoidEndpoint(): void {
    if (this.servedBy !== undefined) this.transport.avoid(this.servedBy);
  }

  /**
   * Checks that the member serving this stream still answers and still follows the cluster, by asking that member
   * only for its status. A quiet stream looks the same whether nothing changes, its member froze with the connection
   * open (SIGSTOP, a stalled host), or its member was removed from the cluster (vigie's removed member keeps running
   * but applies nothing more; etcd's exits). A request through the client's failover would be answered by another
   * member and say nothing about this stream. Rejects when the member does not answer within the request timeout or
   * says it was removed; the client's next request then starts at another endpoint. Resolves at once when the stream
   * is not open (opening has its own timeout).
   */
  async probe(): Promise<void> {
    const url = this.servedBy;
    if (url === undefined || this.userCanceled) return;
    try {
      const status = await this.transport.callEndpoint(url, "/v3/maintenance/status", {});
      const errors = Array.isArray(status.errors) ? status.errors.map(String) : [];
      // vigie's status lists "this member was removed from the cluster" (src/store/node/replica-node.ts). Other
      // errors (etcd's NOSPACE alarm...) are cluster-wide and do not stop a watch: they are no reason to move.
      const removed = errors.find((error) => error.includes("removed from the cluster"));
      if (removed !== undefined) throw new StoreUnavailableError(`${url}: ${removed}; its watches get nothing more`);
    } catch (error) {
      this.avoidEndpoint();
      throw error;
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    if (this.started) throw new Error("a WatchStream can be iterated once");
    this.started = true;
    const create: WireObject = {};
    encodeRange(create, this.key, { prefix: this.options.prefix, rangeEnd: this.options.rangeEnd });
    if (this.options.startRevision !== undefined) create.start_revision = String(this.options.startRevision);
    if (this.options.prevKv === true) create.prev_kv = true;
    if (this.options.progressNotify === true) create.progress_notify = true;
    const maxMessageBytes = this.options.maxMessageBytes ?? 8 * 1024 * 1024;
    let body: AsyncIterable<Buffer>;
    try {
      const opened = await this.transport.openStream("/v3/watch", { create_request: create }, this.abort.signal);
      body = opened.body;
      this.servedBy = opened.endpointUrl;
    } catch (error) {
      if (this.userCanceled) return;
      throw error;
    }
    const splitter = new LineSplitter(maxMessageBytes, "/v3/watch");
    try {
      for await (const chunk of body) {
        for (const line of splitter.push(chunk)) {
          if (line.trim() !== "") yield decodeMessage(line);
        }
      }
    } catch (error) {
      if (this.userCanceled) return;
      throw error;
    } finally {
      // Also reached when the consumer stops iterating (break): release the connection.
      this.abort.abort();
    }
    if (!this.userCanceled) throw new StoreUnavailableError("/v3/watch: the store closed the stream");
  }
}

/**
 * A watch message over the size limit. The stream cannot go on past it, and resuming from the same revision gets
 * the same message again (etcd batches up to 1000 revisions of events in one message): a caller must skip that
 * history (read the present, as after a compaction) instead of reconnecting, or it never makes progress.
 */
export class WatchMessageTooLargeError extends StoreUnavailableError {
  constructor(
    what: string,
    readonly maxBytes: number,
  ) {
    super(`${what}: message larger than ${maxBytes} bytes`);
  }
}

/**
 * Cuts a byte stream into newline-terminated lines, whatever the chunk boundaries (a line may span chunks; a chunk
 * may hold several lines, or split a multi-byte character). A line longer than `maxLineBytes` is refused: it would
 * otherwise grow without bound.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly maxLineBytes: number,
    private readonly what: string,
  ) {}

  /** The lines completed by `chunk`, without their newline. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let newline = chunk.indexOf(10); newline !== -1; newline = chunk.indexOf(10, start)) {
      this.grow(newline - start);
      this.pending.push(chunk.subarray(start, newline));
      lines.push(Buffer.concat(this.pending, this.pendingBytes).toString("utf8"));
      this.pending = [];
      this.pendingBytes = 0;
      start = newline + 1;
    }
    if (start < chunk.length) {
      this.grow(chunk.length - start);
      this.pending.push(chunk.subarray(start));
    }
    return lines;
  }

  private grow(bytes: number): void {
    this.pendingBytes += bytes;
    if (this.pendingBytes > this.maxLineBytes) {
      throw new WatchMessageTooLargeError(this.what, this.maxLineBytes);
    }
  }
}

function decodeMessage(line: string): WatchResponse {
  let message: WireObject;
  try {
    message = JSON.parse(line) as WireObject;
  } catch {
    throw new StoreUnavailableError(`/v3/watch: a message is not JSON: ${line.slice(0, 200)}`);
  }
  if (message.error !== undefined) {
    // grpc-gateway stream errors: {"error":{"grpc_code","http_code","message"}}; unary-style bodies also seen.
    const error = (typeof message.error === "object" ? message.error : message) as WireObject;
    throw new EtcdError(
      Number(error.grpc_code ?? error.code ?? 2),
      String(error.message ?? "watch error"),
      Number(error.http_code ?? 500),
    );
  }
  const result = (message.result ?? {}) as WireObject;
  const events = Array.isArray(result.events) ? (result.events as WireObject[]) : [];
  return {
    header: decodeHeader(result.header),
    watchId: String(result.watch_id ?? "0"),
    created: result.created === true,
    canceled: result.canceled === true,
    compactRevision: decodeInt(result.compact_revision),
    cancelReason: String(result.cancel_reason ?? ""),
    events: events.map((event) => ({
      type: event.type === "DELETE" ? "DELETE" : "PUT",
      kv: decodeKeyValue(event.kv ?? {}),
      prevKv: event.prev_kv === undefined ? undefined : decodeKeyValue(event.prev_kv),
    })),
  };
}
