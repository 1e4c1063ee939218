// The plain-text answers of etcd's client port that are not gRPC gateway calls: /health, /metrics, the 404 and 405
// pages, and the headers every answer carries. Its own module, free of the gateway's code, so that a client-role
// agent serves them without loading the replica's API.
import type { ServerResponse } from "node:http";

/** etcd's gateway answers CORS preflights and sets these on every response. */
export const CORS_HEADERS = {
  "access-control-allow-headers": "accept, content-type, authorization",
  "access-control-allow-methods": "POST, GET, OPTIONS, PUT, DELETE",
  "access-control-allow-origin": "*",
} as const;

/** On the plain-text 404 and 405 pages, which etcd's gateway writes with Go's http.Error. */
export const PLAIN_ERROR_HEADERS = { "x-content-type-options": "nosniff" } as const;

export function sendText(
  response: ServerResponse,
  status: number,
  text: string,
  extra: Readonly<Record<string, string>> = {},
) {
  response.writeHead(status, {
    ...CORS_HEADERS,
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    ...extra,
  });
  response.end(text);
}

/**
 * GET /health's answer as etcd writes it: JSON text without a content type, which Go's sniffing sends as plain text.
 * etcd answers unhealthy (503) when the member sees no leader; vigie adds the reason.
 */
export function sendHealth(response: ServerResponse, unhealthyReasons: readonly string[]): void {
  const healthy = unhealthyReasons.length === 0;
  const body = healthy ? { health: "true" } : { health: "false", reason: unhealthyReasons.join("; ") };
  sendText(response, healthy ? 200 : 503, JSON.stringify(body));
}

/** /health asked with another method: etcd's mux answers with Go's http.Error and the methods it takes. */
export function sendGetOnly(response: ServerResponse): void {
  sendText(response, 405, "Method Not Allowed\n", { ...PLAIN_ERROR_HEADERS, allow: "GET" });
}

/** /metrics, for any method as Prometheus' handler answers, in its text format. */
export function sendMetrics(response: ServerResponse, text: string): void {
  sendText(response, 200, text, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
}

/**
 * A path nobody serves: under /v3/ etcd's gRPC gateway answers "Not Found", elsewhere Go's mux its own page.
 */
export function sendNotFound(response: ServerResponse, path: string): void {
  sendText(response, 404, path.startsWith("/v3/") ? "Not Found\n" : "404 page not found\n", PLAIN_ERROR_HEADERS);
}
