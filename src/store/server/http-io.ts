// Reading bounded request bodies and writing etcd-shaped answers on node:http.
import type { IncomingMessage, ServerResponse } from "node:http";
import { GatewayError, Grpc } from "./errors.js";
import { scanJsonValue, skipJsonSpace } from "./json-scan.js";
import { CORS_HEADERS } from "./plain-http.js";
import { markNumberText } from "./proto-json.js";

/**
 * etcd's gRPC server refuses any message above max-request-bytes (1.5 MiB) + 512 KiB of overhead before the
 * request reaches the store; its gateway reports that as ResourceExhausted. vigie applies the same bound.
 */
export const GRPC_MAX_RECEIVE_BYTES = 2 * 1024 * 1024;

/** The JSON body carrying a message of GRPC_MAX_RECEIVE_BYTES: base64 makes bytes 4/3 larger, plus field names. */
export const MAX_JSON_BODY_BYTES = Math.ceil((GRPC_MAX_RECEIVE_BYTES * 4) / 3) + 64 * 1024;

/** Approximate protobuf size of a JSON request: its payload is base64 (3 bytes per 4 characters). */
export function estimatedProtoBytes(jsonBytes: number): number {
  return Math.floor((jsonBytes * 3) / 4);
}

export function messageTooLarge(protoBytes: number): GatewayError {
  return new GatewayError(
    Grpc.ResourceExhausted,
    `grpc: received message larger than max (${protoBytes} vs. ${GRPC_MAX_RECEIVE_BYTES})`,
  );
}

/**
 * An oversized unary body is still read, and dropped, up to this many bytes before the refusal is written, as
 * etcd's gateway reads a whole body before its gRPC backend refuses it. A server that answers and closes while the
 * client is still sending leaves unread bytes behind, which makes the close abortive (a reset): the client then sees
 * "connection reset" instead of the answer. Seen on a loaded 2-core machine with a 2.9 MB body, where the bytes
 * arrived after the server had answered. Beyond this bound a body is not worth reading: it is refused unread.
 */
export const MAX_DRAINED_BODY_BYTES = 16 * 1024 * 1024;

/**
 * Reads a unary request body, refusing it once it passes `maxBytes` (ResourceExhausted). What comes after that, up
 * to `drainBytes` in all, is read and dropped so the client can send it all and read the refusal (see
 * MAX_DRAINED_BODY_BYTES); beyond `drainBytes`, or with a declared content-length beyond it, the refusal comes at once
 * and the stream is paused, not destroyed, so the answer is written before the server closes the connection.
 * With stream events rather than `for await`, whose early exit destroyed the request (and so the socket, when the
 * body was still arriving) and turned a client that went away into an unexpected server error.
 */
export function readBody(request: IncomingMessage, maxBytes: number, drainBytes = maxBytes): Promise<Buffer> {
  const declared = Number(request.headers["content-length"] ?? "NaN");
  if (Number.isFinite(declared) && declared > Math.max(maxBytes, drainBytes)) {
    return Promise.reject(messageTooLarge(estimatedProtoBytes(declared)));
  }
  // Called after the request ended or went away (behind an await), no event would come again: settle at once.
  if (request.readableEnded) return Promise.resolve(Buffer.alloc(0));
  if (request.destroyed) return Promise.reject(new GatewayError(Grpc.Canceled, "context canceled"));
  return new Promise<Buffer>((resolve, reject) => {
    let chunks: Buffer[] = [];
    let total = 0;
    const settle = (error: Error | undefined) => {
      request.off("data", onData);
      request.off("end", onEnd);
      request.off("error", onGone);
      request.off("close", onGone);
      if (error !== undefined) reject(error);
      else resolve(Buffer.concat(chunks, total));
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      chunks = []; // refused: nothing read from here on is kept
      if (total > drainBytes) {
        settle(messageTooLarge(estimatedProtoBytes(total)));
        request.pause(); // the rest is not read: the answer asks the client to close the connection
      }
    };
    const onEnd = () =>
      settle(
        total > maxBytes || estimatedProtoBytes(total) > GRPC_MAX_RECEIVE_BYTES
          ? messageTooLarge(estimatedProtoBytes(total))
          : undefined,
      );
    // An error or a close before the end: the client went away mid-body ("aborted", ECONNRESET). etcd calls that a
    // canceled context; nobody is left to answer, and it is not a server fault to log.
    const onGone = () => settle(new GatewayError(Grpc.Canceled, "context canceled"));
    request.on("data", onData);
    request.on("end", onEnd);
    request.on("error", onGone);
    request.on("close", onGone);
  });
}

/**
 * Parses the first JSON value of a body like Go's json.Decoder: an empty body is an empty message (null) and
 * bytes after the first value are ignored. Syntax errors become InvalidArgument with Go's wording.
 */
export function parseFirstJsonValue(text: string): unknown {
  const start = skipJsonSpace(text, 0);
  if (start === text.length) return null;
  const numbers: Array<[number, number]> = [];
  const scanned = scanJsonValue(text, start, numbers);
  if (!scanned.ok) throw new GatewayError(Grpc.InvalidArgument, scanned.message);
  // Go reads a number from its text: "1e2", "1.0" and "-0" are no int64 for it, and an integer beyond 2^53 keeps
  // every digit. JSON.parse would turn them into 100, 1, 0 and a rounded double, so those few tokens reach the
  // reader as marked strings carrying their text (proto-json.ts); plain integers stay numbers (the common case).
  const inexact = numbers.filter(([from, to]) => !EXACT_INTEGER.test(text.slice(from, to)));
  if (inexact.length === 0) return JSON.parse(text.slice(start, scanned.end));
  let rebuilt = "";
  let copied = start;
  for (const [from, to] of inexact) {
    rebuilt += text.slice(copied, from) + JSON.stringify(markNumberText(text.slice(from, to)));
    copied = to;
  }
  return JSON.parse(rebuilt + text.slice(copied, scanned.end));
}

/** Integers a double holds exactly whatever their digits (at most 15), other than "-0". */
const EXACT_INTEGER = /^(0|-?[1-9]\d{0,14})$/;

/**
 * On an answer that came from etcd's gRPC backend (a unary call that succeeded, a stream's 200), its gateway also
 * passes on the backend's content type.
 */
export const GRPC_METADATA_HEADERS = { "grpc-metadata-content-type": "application/grpc" } as const;

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  extra: Readonly<Record<string, string>> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    ...CORS_HEADERS,
    "content-type": "application/json",
    ...extra,
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}

export function sendGatewayError(response: ServerResponse, error: GatewayError): void {
  sendJson(response, error.httpStatus, error.body());
}
