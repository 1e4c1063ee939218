// HTTP transport to the store's JSON gateway: one undici Pool per endpoint, explicit timeouts, bounded responses,
// and failover to the next endpoint when one cannot be reached.
import assert from "node:assert/strict";
import { StoreUnavailableError } from "../../errors.js";
import { Pool } from "../undici-pool.js";
import { EtcdError, GRPC_UNAVAILABLE, type WireObject } from "./wire.js";

export interface TransportOptions {
  /** Client URLs, e.g. `http://127.0.0.1:2379`. Tried in order; the last one that answered is preferred. */
  endpoints: string[];
  /** Time to open a TCP connection (default 2 s). */
  connectTimeoutMs?: number;
  /** Time for a unary request's whole answer (default 5 s). */
  requestTimeoutMs?: number;
  /** Largest response body accepted (default 8 MiB; etcd's default request limit is 1.5 MiB). */
  maxResponseBytes?: number;
  /** Connections per endpoint for unary requests (default 16). Watch streams use their own pool. */
  connectionsPerEndpoint?: number;
  /** Concurrent watch streams per endpoint (default 256); each holds one HTTP connection. */
  maxWatchStreams?: number;
}

interface Endpoint {
  url: string;
  unary: Pool;
  streams: Pool;
}

/** Errors that mean "this endpoint is not answering", as opposed to an answer we did not like. */
const CONNECTION_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "ETIMEDOUT",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && CONNECTION_ERROR_CODES.has(code);
}

/** Errors raised before the request could reach the store: retrying elsewhere cannot apply a change twice. */
const NOT_SENT_ERROR_CODES = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_CONNECT_TIMEOUT"]);

function wasNotSent(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && NOT_SENT_ERROR_CODES.has(code);
}

/**
 * Which calls may go to the next endpoint after a failure. Reads may always; a write (put, txn, lease grant,
 * member add...) only when it surely never left, since a connection lost after sending may have applied it.
 */
export type RetryPolicy = "read" | "write";

export class Transport {
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxResponseBytes: number;
  private readonly endpoints: Endpoint[];
  /** Index of the endpoint that answered last: requests start there so a dead endpoint costs one failure only. */
  private preferred = 0;
  private closed = false;

  constructor(options: TransportOptions) {
    assert.ok(options.endpoints.length > 0, "the store client needs at least one endpoint");
    this.connectTimeoutMs = options.connectTimeoutMs ?? 2_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
    this.maxResponseBytes = options.maxResponseBytes ?? 8 * 1024 * 1024;
    this.endpoints = options.endpoints.map((raw) => {
      const url = new URL(raw);
      assert.ok(url.protocol === "http:" || url.protocol === "https:", `endpoint ${raw} must be http(s)`);
      const origin = url.origin;
      return {
        url: origin,
        unary: new Pool(origin, {
          connections: options.connectionsPerEndpoint ?? 16,
          connect: { timeout: this.connectTimeoutMs },
          keepAliveTimeout: 30_000,
          pipelining: 1,
        }),
        streams: new Pool(origin, {
          connections: options.maxWatchStreams ?? 256,
          connect: { timeout: this.connectTimeoutMs },
          // A watch or keepalive stream is idle for as long as nothing changes: no body timeout.
          bodyTimeout: 0,
        }),
      };
    });
  }

  get endpointUrls(): string[] {
    return this.endpoints.map((endpoint) => endpoint.url);
  }

  /** POSTs `body` to `path` and returns the parsed JSON answer; store errors become `EtcdError`. */
  async call(
    path: string,
    body: WireObject,
    retry: RetryPolicy,
    timeoutMs = this.requestTimeoutMs,
  ): Promise<WireObject> {
    const payload = JSON.stringify(body);
    return await this.withFailover(retry, async (endpoint) => await this.send(endpoint, path, payload, timeoutMs));
  }

  /**
   * POSTs `body` to the endpoint `url` only, with no failover: for questions about that member itself, such as
   * "is the member serving this watch stream still answering?", which another member's answer would not settle.
   */
  async callEndpoint(
    url: string,
    path: string,
    body: WireObject,
    timeoutMs = this.requestTimeoutMs,
  ): Promise<WireObject> {
    if (this.closed) throw new StoreUnavailableError("store client is closed");
    const endpoint = this.endpoints.find((candidate) => candidate.url === url);
    assert.ok(endpoint !== undefined, `${url} is not one of this client's endpoints`);
    return await this.send(endpoint, path, JSON.stringify(body), timeoutMs);
  }

  /** The next request starts after `url` (a member found frozen or removed) rather than with it. */
  avoid(url: string): void {
    const index = this.endpoints.findIndex((endpoint) => endpoint.url === url);
    if (index !== -1 && index === this.preferred) this.preferred = (index + 1) % this.endpoints.length;
  }

  private async send(endpoint: Endpoint, path: string, payload: string, timeoutMs: number): Promise<WireObject> {
    const response = await endpoint.unary.request({
      method: "POST",
      path,
      body: payload,
      headers: { "content-type": "application/json" },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await readBounded(response.body, this.maxResponseBytes, path);
    return parseAnswer(text, response.statusCode, path);
  }

  /**
   * Opens a streaming POST (watch, keepalive) and returns its body and the endpoint serving it. Failover applies
   * only until the response headers arrive; after that the caller owns the stream and decides how to reconnect.
   */
  async openStream(
    path: string,
    body: WireObject,
    signal: AbortSignal,
  ): Promise<{ body: AsyncIterable<Buffer>; endpointUrl: string }> {
    const payload = JSON.stringify(body);
    // Opening a watch or keepalive stream changes nothing in the store: it may go to any endpoint.
    return await this.withFailover("read", async (endpoint) => {
      const response = await endpoint.streams.request({
        method: "POST",
        path,
        body: payload,
        signal,
        headers: { "content-type": "application/json" },
        headersTimeout: this.requestTimeoutMs,
        bodyTimeout: 0,
      });
      if (response.statusCode !== 200) {
        const text = await readBounded(response.body, this.maxResponseBytes, path);
        parseAnswer(text, response.statusCode, path);
        throw new StoreUnavailableError(`${path}: HTTP ${response.statusCode}`);
      }
      return { body: response.body as AsyncIterable<Buffer>, endpointUrl: endpoint.url };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.endpoints.flatMap((endpoint) => [endpoint.unary.destroy(), endpoint.streams.destroy()]));
  }

  private async withFailover<T>(retry: RetryPolicy, attempt: (endpoint: Endpoint) => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError("store client is closed");
    const failures: string[] = [];
    let unavailableAnswer: EtcdError | undefined;
    let unavailableAnswers = 0;
    for (let i = 0; i < this.endpoints.length; i++) {
      const index = (this.preferred + i) % this.endpoints.length;
      const endpoint = this.endpoints[index]!;
      try {
        const result = await attempt(endpoint);
        this.preferred = index;
        return result;
      } catch (error) {
        // A read that a member cannot serve now (gRPC Unavailable: no leader, as in a minority cut off from the
        // rest) may be served by another, as etcd's client retries it. Not a write: "request timed out" and
        // "leader changed" are Unavailable too, and such a write may still be applied.
        if (retry === "read" && error instanceof EtcdError && error.grpcCode === GRPC_UNAVAILABLE) {
          unavailableAnswer = error;
          unavailableAnswers++;
          failures.push(`${endpoint.url}: ${error.message}`);
          continue;
        }
        // Otherwise only "could not talk to it" moves on to the next endpoint; an answer (even an error) is final.
        if (!isConnectionError(error)) throw error;
        if (retry === "write" && !wasNotSent(error)) {
          // Not resent, but the next request starts at the next endpoint: `preferred` moves only on success, so a
          // member that froze (SIGSTOP, TCP open, no answers) would otherwise get every write first, each timing out
          // with its outcome unknown, for as long as it stays frozen.
          this.preferred = (index + 1) % this.endpoints.length;
          throw new StoreUnavailableError(
            `${endpoint.url}: connection lost after sending a write; it may or may not have been applied (${(error as Error).message})`,
            { cause: error },
          );
        }
        failures.push(`${endpoint.url}: ${(error as Error).message}`);
      }
    }
    // Every member answered that it cannot serve the read now: the last answer, as a single member gives it.
    if (unavailableAnswer !== undefined && unavailableAnswers === this.endpoints.length) throw unavailableAnswer;
    throw new StoreUnavailableError(`store unreachable (${failures.join("; ")})`);
  }
}

/**
 * An answer over the client's size limit (`maxResponseBytes`). Asking another member would get the same answer: a
 * caller that can split its question (a range, in pages) should, rather than retry it.
 */
export class ResponseTooLargeError extends StoreUnavailableError {
  constructor(
    path: string,
    readonly maxBytes: number,
  ) {
    super(`${path}: response larger than ${maxBytes} bytes; refusing it`);
  }
}

async function readBounded(body: AsyncIterable<Buffer>, maxBytes: number, path: string): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > maxBytes) throw new ResponseTooLargeError(path, maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total).toString("utf8");
}

/** Parses one JSON answer (unary body or one line of a stream) and turns an error body into an `EtcdError`. */
export function parseAnswer(text: string, httpStatus: number, path: string): WireObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new StoreUnavailableError(`${path}: HTTP ${httpStatus} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new StoreUnavailableError(`${path}: expected a JSON object, got ${text.slice(0, 200)}`);
  }
  const object = parsed as WireObject;
  if (object.error !== undefined || httpStatus >= 400) {
    const message = String(object.message ?? object.error ?? `HTTP ${httpStatus}`);
    throw new EtcdError(Number(object.code ?? 2), message, httpStatus);
  }
  return object;
}
