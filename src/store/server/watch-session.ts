// One `/v3/watch` HTTP stream: the request body is a sequence of JSON messages (`create_request`,
// `cancel_request`, `progress_request`), the response a chunked sequence of `{"result": WatchResponse}` lines.
// Like etcd, watch ids are per stream and start at 0, the stream stays open after the request body ends, and a
// malformed first message is answered with HTTP 500 and a code-2 error body (a later one ends the stream with a
// grpc-gateway stream error line). Bounded: watchers per stream, message size, and output: a watcher is only read
// when the socket has drained, so a slow client makes the hub cancel its watcher instead of growing memory here.
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import type { Logger } from "../../log.js";
import type { WatchResponse } from "../mvcc/watch-types.js";
import type { Watcher } from "../mvcc/watcher.js";
import type { Replica } from "../replica.js";
import { GatewayError, Grpc, toGatewayError } from "./errors.js";
import { CORS_HEADERS, sendGatewayError } from "./http-io.js";
import { JsonStreamError, JsonValueSplitter } from "./json-scan.js";
import { decodeWatchCreateRequest, encodeHeader, encodeWatchEvent } from "./kv-codec.js";
import { type JsonObject, ProtoReader, putBool, putInt, putList, putString } from "./proto-json.js";

export interface WatchSessionLimits {
  maxWatchersPerStream: number;
  /** Largest single request message (characters). */
  maxMessageChars: number;
}

/** etcd 3.4 answers a progress_request with this watch id (meaning "all watchers of the stream"). */
const PROGRESS_WATCH_ID = -1;

export class WatchSession {
  /** Stream-local id -> hub watcher (null: a watch on the empty key, which etcd accepts and never fires). */
  private readonly watchers = new Map<number, Watcher | null>();
  private nextLocalId = 0;
  private closed = false;
  private drained: Promise<void> | undefined;
  private markFinished: () => void = () => {};
  /** Resolves once the stream is over (client gone, error, or server closing). */
  private readonly finished = new Promise<void>((resolve) => {
    this.markFinished = resolve;
  });

  constructor(
    private readonly replica: Replica,
    private readonly request: IncomingMessage,
    private readonly response: ServerResponse,
    private readonly limits: WatchSessionLimits,
    private readonly logger: Logger,
    private readonly onWatchersChanged: (delta: number) => void,
  ) {}

  /** Serves the stream; resolves when it is over (the client went away, an error ended it, or the server closes). */
  async run(): Promise<void> {
    this.response.on("close", () => this.close());
    await this.readRequests();
    // etcd keeps the stream open after the request body ends: responses continue until the client disconnects.
    await this.finished;
  }

  private async readRequests(): Promise<void> {
    const splitter = new JsonValueSplitter(this.limits.maxMessageChars);
    try {
      for await (const chunk of this.request as AsyncIterable<Buffer>) {
        for (const text of splitter.push(chunk)) this.handleMessage(text);
        if (this.closed) return;
      }
      for (const text of splitter.end()) this.handleMessage(text);
    } catch (error) {
      if (error instanceof JsonStreamError) {
        for (const text of error.complete) this.handleMessage(text);
        this.fail(new GatewayError(Grpc.Unknown, error.message));
      } else if (!this.closed) {
        this.fail(toGatewayError(error).error);
      }
      // else: the client went away mid-body
    }
  }

  private handleMessage(text: string): void {
    if (this.closed) return;
    try {
      const message = ProtoReader.ofBody(JSON.parse(text), "etcdserverpb.WatchRequest");
      const create = message.message("create_request", "etcdserverpb.WatchCreateRequest");
      const cancel = message.message("cancel_request", "etcdserverpb.WatchCancelRequest");
      const progress = message.message("progress_request", "etcdserverpb.WatchProgressRequest");
      if (create !== undefined) this.create(create);
      else if (cancel !== undefined) this.cancel(cancel.int64("watch_id"));
      else if (progress !== undefined) this.send(this.result({}, PROGRESS_WATCH_ID, this.replica.kv.revision));
      // etcd: a message with no request in it is ignored.
    } catch (error) {
      const mapped = toGatewayError(error);
      if (mapped.unexpected) this.logger.error({ err: error }, "watch request failed");
      // etcd reports stream errors with code Unknown whatever their cause.
      this.fail(new GatewayError(Grpc.Unknown, mapped.error.message));
    }
  }

  private create(reader: ProtoReader): void {
    const request = decodeWatchCreateRequest(reader);
    if (this.watchers.size >= this.limits.maxWatchersPerStream) {
      throw new GatewayError(
        Grpc.ResourceExhausted,
        `too many watchers on one stream (the limit is ${this.limits.maxWatchersPerStream})`,
      );
    }
    // etcd: a client may choose the id (any non-zero int64); otherwise the stream's next free one from 0.
    const requested = reader.int64("watch_id");
    if (requested !== 0 && this.watchers.has(requested)) {
      this.send(
        this.result(
          { created: true, canceled: true, cancel_reason: "mvcc: duplicate watch ID provided on the WatchStream" },
          -1,
          this.replica.kv.revision,
        ),
      );
      return;
    }
    let localId = requested;
    if (localId === 0) {
      while (this.watchers.has(this.nextLocalId)) this.nextLocalId++;
      localId = this.nextLocalId++;
    }
    if (request.key.length === 0 && (request.range_end?.length ?? 0) === 0) {
      // etcd accepts a watch on the empty key (no key can be empty, so it never fires).
      this.watchers.set(localId, null);
      this.send(this.result({ created: true }, localId, this.replica.kv.revision));
      return;
    }
    // ["", end) and ["\0", end) select the same keys (no key is empty); the hub wants a non-empty start.
    if (request.key.length === 0) request.key = new Uint8Array([0]);
    const watcher = this.replica.kv.watch(request);
    this.watchers.set(localId, watcher);
    this.onWatchersChanged(1);
    // The `created` answer goes out now, so it precedes anything answered for the stream's next messages.
    const created = watcher.tryNext();
    if (created !== undefined) this.send(this.encode(created, localId));
    void this.pump(localId, watcher);
  }

  private cancel(localId: number): void {
    const watcher = this.watchers.get(localId);
    if (watcher === undefined) return; // etcd: cancelling an unknown id is silently ignored
    if (watcher === null) {
      this.watchers.delete(localId);
      this.send(this.result({ canceled: true }, localId, this.replica.kv.revision));
      return;
    }
    watcher.cancel(); // the pump sends the final canceled response and forgets the watcher
  }

  /** Copies one watcher's responses to the socket, waiting for the socket to drain between writes. */
  private async pump(localId: number, watcher: Watcher): Promise<void> {
    try {
      for (;;) {
        if (this.drained !== undefined) await this.drained;
        const response = await watcher.next();
        if (response === null || this.closed) break;
        this.send(this.encode(response, localId));
        if (response.canceled) break;
      }
    } catch (error) {
      this.logger.error({ err: error }, "watch stream failed");
      this.fail(toGatewayError(error).error);
    } finally {
      watcher.cancel();
      if (this.watchers.get(localId) === watcher) {
        this.watchers.delete(localId);
        this.onWatchersChanged(-1);
      }
    }
  }

  private encode(response: WatchResponse, localId: number): JsonObject {
    // etcd: the cancel for a compacted start revision has NO revision in its header; other messages carry
    // the store revision when they were produced (a client cancel: the current one).
    const compacted = response.canceled && response.compact_revision > 0;
    const revision = compacted ? undefined : response.header.revision || this.replica.kv.revision;
    const result = this.result(
      {
        created: response.created,
        canceled: response.canceled,
        compact_revision: response.compact_revision,
        cancel_reason: response.cancel_reason,
      },
      localId,
      revision,
    );
    putList(result.result as JsonObject, "events", response.events, encodeWatchEvent);
    return result;
  }

  private result(
    fields: { created?: boolean; canceled?: boolean; compact_revision?: number; cancel_reason?: string },
    localId: number,
    revision: number | undefined,
  ): JsonObject {
    const out: JsonObject = { header: encodeHeader(this.replica.header(), revision) };
    putInt(out, "watch_id", localId);
    putBool(out, "created", fields.created);
    putBool(out, "canceled", fields.canceled);
    putInt(out, "compact_revision", fields.compact_revision);
    // A client-requested cancel has an empty reason; the hub's own (slow consumer, compaction) are explained.
    if (fields.compact_revision === undefined || fields.compact_revision === 0) {
      putString(out, "cancel_reason", fields.cancel_reason);
    }
    return { result: out };
  }

  private send(message: JsonObject): void {
    if (this.closed) return;
    if (!this.response.headersSent) {
      this.response.writeHead(200, { ...CORS_HEADERS, "content-type": "application/json" });
    }
    const ok = this.response.write(`${JSON.stringify(message)}\n`);
    if (!ok && this.drained === undefined) {
      this.drained = waitForDrain(this.response).then(() => {
        this.drained = undefined;
      });
    }
  }

  /** Ends the stream with an error: an error body before anything was sent, a stream error line after. */
  private fail(error: GatewayError): void {
    if (this.closed) return;
    if (!this.response.headersSent) {
      sendGatewayError(this.response, new GatewayError(Grpc.Unknown, error.message));
    } else {
      this.response.end(`${JSON.stringify(streamErrorLine(error))}\n`);
    }
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const watcher of this.watchers.values()) watcher?.cancel();
    if (!this.response.writableEnded) this.response.end();
    this.markFinished();
  }
}

/** grpc-gateway v1's shape for an error after a stream's headers were sent. */
export function streamErrorLine(error: GatewayError): JsonObject {
  const status = error.httpStatus;
  return {
    error: {
      grpc_code: error.grpcCode,
      http_code: status,
      message: error.message,
      http_status: STATUS_CODES[status] ?? "",
    },
  };
}

/** Resolves when the socket can take more, or when it closed (nothing more will be written then). */
export function waitForDrain(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off("drain", done);
      response.off("close", done);
      resolve();
    };
    response.once("drain", done);
    response.once("close", done);
  });
}
