// One `/v3/watch` HTTP stream: the request body is a sequence of JSON messages (`create_request`,
// `cancel_request`, `progress_request`), the response a chunked sequence of `{"result": WatchResponse}` lines.
// Like etcd 3.4's gateway: watch ids are per stream and start at 0, the stream stays open after the request body
// ends, a first message that does not decode is answered with HTTP 500 and a code-2 error body, and a later one
// only stops the reading of requests (the gateway half-closes its gRPC stream): the watchers already created keep
// delivering. Bounded: watchers per stream, message size, and output: a watcher is only read when the socket has
// drained, so a slow client makes the hub cancel its watcher instead of growing memory here.
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import type { Logger } from "../../log.js";
import { MAX_REQUEST_BYTES } from "../mvcc/index.js";
import type { WatchCreateRequest, WatchResponse } from "../mvcc/watch-types.js";
import type { Watcher } from "../mvcc/watcher.js";
import type { Replica } from "../replica.js";
import { GatewayError, Grpc, toGatewayError } from "./errors.js";
import { GRPC_METADATA_HEADERS, sendGatewayError } from "./http-io.js";
import { JsonStreamError, JsonValueSplitter } from "./json-scan.js";
import { decodeWatchCreateRequest, encodeHeader, encodeWatchEvent } from "./kv-codec.js";
import { CORS_HEADERS } from "./plain-http.js";
import { type JsonObject, ProtoReader, putBool, putInt, putList, putString } from "./proto-json.js";
import { fragmentWatchResponse } from "./watch-fragment.js";

export interface WatchSessionLimits {
  maxWatchersPerStream: number;
  /** Largest single request message (characters). */
  maxMessageChars: number;
}

/** etcd 3.4 answers a progress_request, and a create it refuses, with this watch id. */
const STREAM_WATCH_ID = -1;

/** etcd's watch server fragments at max-request-bytes plus its gRPC overhead allowance (observed: 2 MiB). */
const FRAGMENT_LIMIT_BYTES = MAX_REQUEST_BYTES + 512 * 1024;

/** A decoded request message (decoding is separate from acting: only a decoding failure stops the reading). */
type StreamRequest =
  | { kind: "create"; create: WatchCreateRequest; watchId: number; fragment: boolean }
  | { kind: "cancel"; watchId: number }
  | { kind: "progress" }
  | { kind: "none" };

/**
 * A stream-local watch id in use: the hub watcher, or RETIRED for a watcher the server cancelled because its start
 * revision was compacted. etcd keeps such an id registered until the client cancels it: a cancel_request for it is
 * still answered, and the id cannot be chosen again meanwhile.
 */
const RETIRED = null;

export class WatchSession {
  private readonly watchers = new Map<number, Watcher | typeof RETIRED>();
  private nextLocalId = 0;
  private closed = false;
  /** A message decoded: from then on a malformed one no longer fails the stream. */
  private decodedAny = false;
  /** Set by a malformed message after the first: the rest of the request body is read and ignored. */
  private requestsEnded = false;
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
        // After a malformed message the body is still read (the client may go on writing) but not parsed.
        if (!this.requestsEnded) for (const text of splitter.push(chunk)) this.handleMessage(text);
        // Checked after each chunk: a stream that failed must not wait for a body its client may never end.
        if (this.closed) return;
      }
      if (!this.requestsEnded) for (const text of splitter.end()) this.handleMessage(text);
    } catch (error) {
      if (error instanceof JsonStreamError) {
        for (const text of error.complete) this.handleMessage(text);
        this.rejectMessage(error.message);
      } else if (!this.closed) {
        this.fail(toGatewayError(error).error);
      }
      // else: the client went away mid-body
    }
  }

  private handleMessage(text: string): void {
    if (this.closed || this.requestsEnded) return;
    let request: StreamRequest;
    try {
      request = decodeStreamRequest(text);
    } catch (error) {
      const mapped = toGatewayError(error);
      if (mapped.unexpected) this.logger.error({ err: error }, "watch request failed to decode");
      this.rejectMessage(mapped.error.message);
      return;
    }
    this.decodedAny = true;
    try {
      if (request.kind === "create") this.create(request.create, request.watchId, request.fragment);
      else if (request.kind === "cancel") this.cancel(request.watchId);
      else if (request.kind === "progress") this.send(this.result({}, STREAM_WATCH_ID, this.replica.kv.revision));
      // etcd: a message with no request in it is ignored.
    } catch (error) {
      const mapped = toGatewayError(error);
      if (mapped.unexpected) this.logger.error({ err: error }, "watch request failed");
      // etcd reports stream errors with code Unknown whatever their cause.
      this.fail(new GatewayError(Grpc.Unknown, mapped.error.message));
    }
  }

  /**
   * A message that is not valid JSON or not a WatchRequest. etcd's gateway fails the HTTP request when it is the
   * first message (HTTP 500, code 2); after that it only stops forwarding requests: no error line, the stream stays.
   */
  private rejectMessage(message: string): void {
    if (!this.decodedAny) this.fail(new GatewayError(Grpc.Unknown, message));
    else this.requestsEnded = true;
  }

  private create(request: WatchCreateRequest, requested: number, fragment: boolean): void {
    const revision = this.replica.kv.revision;
    // etcd serves a watch on the empty key as one on "\0" (the smallest key; ["", end) is ["\0", end) too).
    if (request.key.length === 0) request.key = new Uint8Array([0]);
    const end = request.range_end;
    // etcd refuses a range that selects nothing (end <= key; an end of "\0" means "every key >= key").
    if (end !== undefined && end.length > 0 && !(end.length === 1 && end[0] === 0)) {
      if (Buffer.compare(request.key, end) >= 0) {
        this.send(this.refused("mvcc: watcher range is empty", revision));
        return;
      }
    }
    if (this.watchers.size >= this.limits.maxWatchersPerStream) {
      throw new GatewayError(
        Grpc.ResourceExhausted,
        `too many watchers on one stream (the limit is ${this.limits.maxWatchersPerStream})`,
      );
    }
    // etcd: a client may choose the id (any non-zero int64); otherwise the stream's next free one from 0.
    if (requested !== 0 && this.watchers.has(requested)) {
      this.send(this.refused("mvcc: duplicate watch ID provided on the WatchStream", revision));
      return;
    }
    let localId = requested;
    if (localId === 0) {
      while (this.watchers.has(this.nextLocalId)) this.nextLocalId++;
      localId = this.nextLocalId++;
    }
    const watcher = this.replica.kv.watch(request);
    this.watchers.set(localId, watcher);
    this.onWatchersChanged(1);
    // The `created` answer goes out now, so it precedes anything answered for the stream's next messages.
    const created = watcher.tryNext();
    if (created !== undefined) this.send(this.encode(created, localId));
    void this.pump(localId, watcher, fragment);
  }

  /** etcd's answer to a create it refuses: created and canceled at once, watch id -1, the reason. */
  private refused(reason: string, revision: number): JsonObject {
    return this.result({ created: true, canceled: true, cancel_reason: reason }, STREAM_WATCH_ID, revision);
  }

  private cancel(localId: number): void {
    const watcher = this.watchers.get(localId);
    if (watcher === undefined) return; // etcd: cancelling an unknown id is silently ignored
    if (watcher === RETIRED) {
      this.watchers.delete(localId);
      this.send(this.result({ canceled: true }, localId, this.replica.kv.revision));
      return;
    }
    watcher.cancel(); // the pump sends the final canceled response and forgets the watcher
  }

  /** Copies one watcher's responses to the socket, waiting for the socket to drain between writes. */
  private async pump(localId: number, watcher: Watcher, fragment: boolean): Promise<void> {
    let retire = false;
    try {
      for (;;) {
        if (this.drained !== undefined) await this.drained;
        const response = await watcher.next();
        if (response === null || this.closed) break;
        if (fragment && response.events.length > 1) {
          const pieces = fragmentWatchResponse(response, this.replica.header(), localId, FRAGMENT_LIMIT_BYTES);
          for (const piece of pieces) this.send(this.encode(piece.response, localId, piece.fragment));
        } else {
          this.send(this.encode(response, localId));
        }
        if (response.canceled) {
          retire = response.compact_revision !== 0;
          break;
        }
      }
    } catch (error) {
      this.logger.error({ err: error }, "watch stream failed");
      this.fail(toGatewayError(error).error);
    } finally {
      watcher.cancel();
      if (this.watchers.get(localId) === watcher) {
        if (retire) this.watchers.set(localId, RETIRED);
        else this.watchers.delete(localId);
        this.onWatchersChanged(-1);
      }
    }
  }

  private encode(response: WatchResponse, localId: number, fragment = false): JsonObject {
    // etcd: the cancel for a compacted start revision has NO revision in its header; other messages carry
    // the store revision when they were produced (a client cancel: the current one).
    const compacted = response.canceled && response.compact_revision !== 0;
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
    // etcd's field order: fragment (7) is declared before events (11).
    putBool(result.result as JsonObject, "fragment", fragment);
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
      this.response.writeHead(200, STREAM_HEADERS);
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

/** Decodes one request message (throws the gateway's decoding error). */
function decodeStreamRequest(text: string): StreamRequest {
  const message = ProtoReader.ofBody(JSON.parse(text), "etcdserverpb.WatchRequest");
  const create = message.message("create_request", "etcdserverpb.WatchCreateRequest");
  const cancel = message.message("cancel_request", "etcdserverpb.WatchCancelRequest");
  const progress = message.message("progress_request", "etcdserverpb.WatchProgressRequest");
  if (create !== undefined) {
    return {
      kind: "create",
      create: decodeWatchCreateRequest(create),
      watchId: create.int64("watch_id"),
      fragment: create.bool("fragment"),
    };
  }
  if (cancel !== undefined) return { kind: "cancel", watchId: cancel.int64("watch_id") };
  if (progress !== undefined) return { kind: "progress" };
  return { kind: "none" };
}

/**
 * The headers of a stream's 200 answer. etcd's gateway also passes on its gRPC backend's content type as
 * `Grpc-Metadata-Content-Type` (an error answered before the stream started has no such header, here neither).
 */
export const STREAM_HEADERS = {
  ...CORS_HEADERS,
  "content-type": "application/json",
  ...GRPC_METADATA_HEADERS,
} as const;

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
