// vigie's client API: the etcd v3.4 JSON gateway on node:http, in front of a `Replica`.
//   POST /v3/kv/*, /v3/lease/*, /v3/cluster/member/*, /v3/maintenance/status   unary calls (unary-routes.ts)
//   POST /v3/watch, /v3/lease/keepalive                                         streams
//   GET  /health, /metrics                                                      like etcd's
// Every input is bounded (body size, message size, streams, watchers per stream) and every failure becomes an
// etcd-shaped error answer: the server keeps serving whatever a client sends.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Logger } from "../../log.js";
import {
  type Counter,
  type Gauge,
  type Histogram,
  LATENCY_BUCKETS_SECONDS,
  type MetricsRegistry,
} from "../../metrics.js";
import type { Replica } from "../replica.js";
import { GatewayError, Grpc, toGatewayError } from "./errors.js";
import {
  GRPC_METADATA_HEADERS,
  MAX_DRAINED_BODY_BYTES,
  MAX_JSON_BODY_BYTES,
  parseFirstJsonValue,
  readBody,
  sendGatewayError,
  sendJson,
} from "./http-io.js";
import { serveKeepAlive } from "./keepalive-session.js";
import { PLAIN_ERROR_HEADERS, sendGetOnly, sendHealth, sendMetrics, sendNotFound, sendText } from "./plain-http.js";
import { UNARY_PATHS, unaryHandler } from "./unary-routes.js";
import { WatchSession } from "./watch-session.js";

/** A route added by the agent (e.g. a debug page); it gets the raw request and answers it. */
export type ExtraRoute = (request: IncomingMessage, response: ServerResponse) => void | Promise<void>;

export interface ApiLimits {
  /** Unary requests being served at once (each may buffer a body of up to ~2.8 MB). */
  maxConcurrentUnary: number;
  /** Open client connections. */
  maxConnections: number;
  /** Concurrent watch + keepalive streams. */
  maxStreams: number;
  maxWatchersPerStream: number;
  /** Largest request message in a stream (characters). */
  maxStreamMessageChars: number;
  /** Time to receive a unary request's whole body. */
  bodyTimeoutMs: number;
  /** Interval of progress notifications to watchers that asked for them (etcd: 10 minutes). */
  progressNotifyIntervalMs: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  maxConcurrentUnary: 2_000,
  maxConnections: 20_000,
  maxStreams: 10_000,
  maxWatchersPerStream: 1_000,
  maxStreamMessageChars: 64 * 1024,
  bodyTimeoutMs: 30_000,
  progressNotifyIntervalMs: 10 * 60_000,
};

export interface ApiServerOptions {
  replica: Replica;
  /** `http://host:port`; port 0 picks a free one (see `url` of the result). */
  listenUrl: string;
  logger: Logger;
  metrics: MetricsRegistry;
  /** Extra routes by `METHOD /path` (e.g. `GET /debug/vars`). */
  extraRoutes?: Record<string, ExtraRoute>;
  limits?: Partial<ApiLimits>;
}

export interface ApiServer {
  /** The bound URL (`http://127.0.0.1:<port>`). */
  url: string;
  /** Requests received so far (any path): the agent's idle detection counts them as work. */
  requestsReceived(): number;
  close(): Promise<void>;
}

interface ApiMetrics {
  latency: Map<string, Histogram>;
  requests: Counter;
  watchers: Gauge;
  streams: Gauge;
}

function registerApiMetrics(registry: MetricsRegistry): ApiMetrics {
  const latency = new Map<string, Histogram>();
  // The registry's histograms have no labels: one histogram per path, named after it.
  for (const path of UNARY_PATHS) {
    const slug = path.slice("/v3/".length).replace(/[^a-z0-9]+/g, "_");
    latency.set(
      path,
      registry.histogram(
        `vigie_api_request_duration_seconds_${slug}`,
        `Time to answer ${path}.`,
        LATENCY_BUCKETS_SECONDS,
      ),
    );
  }
  return {
    latency,
    requests: registry.counter("vigie_api_requests_total", "Client API requests by path and gRPC code."),
    watchers: registry.gauge("vigie_api_watchers", "Watchers open on /v3/watch streams."),
    streams: registry.gauge("vigie_api_streams", "Open /v3/watch and /v3/lease/keepalive streams."),
  };
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const limits = { ...DEFAULT_API_LIMITS, ...options.limits };
  const logger = options.logger.child({ component: "api" });
  const { replica } = options;
  const metrics = registerApiMetrics(options.metrics);
  let watcherCount = 0;
  let streamCount = 0;
  metrics.watchers.collect(() => watcherCount);
  metrics.streams.collect(() => streamCount);
  const listen = new URL(options.listenUrl);
  assert.ok(listen.protocol === "http:", `the client API listens on http:// URLs, got ${options.listenUrl}`);

  let unaryInFlight = 0;
  const handleUnary = async (path: string, request: IncomingMessage, response: ServerResponse) => {
    const started = performance.now();
    let code: number = 0;
    unaryInFlight++;
    try {
      if (unaryInFlight > limits.maxConcurrentUnary) {
        response.setHeader("connection", "close");
        throw new GatewayError(Grpc.ResourceExhausted, "etcdserver: too many requests");
      }
      const handler = unaryHandler(path)!;
      let body: Buffer;
      try {
        body = await readBody(request, MAX_JSON_BODY_BYTES, MAX_DRAINED_BODY_BYTES);
      } catch (error) {
        // Past MAX_DRAINED_BODY_BYTES, the rest of a body is not read: close the connection after answering.
        response.setHeader("connection", "close");
        throw error;
      }
      const answer = await handler(replica, parseFirstJsonValue(body.toString("utf8")));
      sendJson(response, 200, answer, GRPC_METADATA_HEADERS);
    } catch (error) {
      const mapped = toGatewayError(error);
      if (mapped.unexpected) logger.error({ err: error, path }, "request failed unexpectedly");
      code = mapped.error.grpcCode;
      if (!response.headersSent) sendGatewayError(response, mapped.error);
    } finally {
      unaryInFlight--;
      metrics.latency.get(path)?.observe((performance.now() - started) / 1000);
      metrics.requests.inc(1, { path, code: String(code) });
    }
  };

  const handleStream = async (path: string, request: IncomingMessage, response: ServerResponse) => {
    if (streamCount >= limits.maxStreams) {
      sendGatewayError(response, new GatewayError(Grpc.ResourceExhausted, "too many open streams; retry later"));
      metrics.requests.inc(1, { path, code: String(Grpc.ResourceExhausted) });
      return;
    }
    metrics.requests.inc(1, { path, code: "0" });
    streamCount++;
    // A stream lives as long as the client wants: no socket timeout.
    request.socket.setTimeout(0);
    try {
      if (path === "/v3/watch") {
        const session = new WatchSession(
          replica,
          request,
          response,
          { maxWatchersPerStream: limits.maxWatchersPerStream, maxMessageChars: limits.maxStreamMessageChars },
          logger,
          (delta) => {
            watcherCount += delta;
          },
        );
        await session.run();
      } else {
        await serveKeepAlive(replica, request, response, limits.maxStreamMessageChars, logger);
      }
    } finally {
      streamCount--;
    }
  };

  const route = async (request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    const method = request.method ?? "GET";
    const extra = options.extraRoutes?.[`${method} ${path}`];
    if (extra !== undefined) return await extra(request, response);
    if (path === "/metrics") return sendMetrics(response, options.metrics.render());
    if (path === "/health") return method === "GET" ? health(response) : sendGetOnly(response);
    const isUnary = unaryHandler(path) !== undefined;
    const isStream = path === "/v3/watch" || path === "/v3/lease/keepalive";
    if (!isUnary && !isStream) return sendNotFound(response, path);
    if (method === "OPTIONS") return sendText(response, 200, "");
    if (method !== "POST") return sendText(response, 405, "Method Not Allowed\n", PLAIN_ERROR_HEADERS);
    if (isStream) return await handleStream(path, request, response);
    return await handleUnary(path, request, response);
  };

  const health = (response: ServerResponse) => {
    const status = replica.status();
    sendHealth(response, status.leader === 0 ? ["no leader"] : status.errors);
  };

  let requestsReceived = 0;
  const server = createServer({ requestTimeout: 0, headersTimeout: 30_000, keepAliveTimeout: 30_000 }, (req, res) => {
    requestsReceived++;
    // Unary bodies must arrive in time; streams reset this in handleStream.
    req.socket.setTimeout(limits.bodyTimeoutMs);
    route(req, res).catch((error: unknown) => {
      logger.error({ err: error }, "client API handler crashed");
      if (!res.headersSent) sendGatewayError(res, new GatewayError(Grpc.Internal, "etcdserver: internal error"));
      else res.destroy();
    });
  });
  server.maxHeadersCount = 100;
  server.maxConnections = limits.maxConnections;
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("timeout", () => socket.destroy());
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("clientError", (_error, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(listen.port || 80), listen.hostname.replace(/^\[|\]$/g, ""), () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  const progressTimer = setInterval(() => replica.kv.watchProgressTick(), limits.progressNotifyIntervalMs);
  progressTimer.unref();
  logger.info({ url }, "client API listening");

  return {
    url,
    requestsReceived: () => requestsReceived,
    close: async () => {
      clearInterval(progressTimer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Watch streams never end on their own: end every connection so close() completes.
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
