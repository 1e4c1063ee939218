// One `/v3/lease/keepalive` HTTP stream: each `{"ID": ...}` message in the request body renews that lease and is
// answered by one `{"result": {header, ID, TTL}}` line, in order; the response ends when the request body ends
// (etcd's gateway does the same). A lease that does not exist is answered with TTL 0, not an error (etcd too).
// Messages are handled one at a time straight from the socket, so a client cannot queue unbounded work.
// A message that does not decode fails the request (HTTP 500, code 2) when it is the first one; after that it ends
// the stream normally, like the end of the body: etcd's gateway half-closes its gRPC stream, and etcd's keepalive
// server returns on that.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../../log.js";
import { LeaseNotFoundError } from "../mvcc/errors.js";
import type { Replica } from "../replica.js";
import { decodeLeaseId, encodeLeaseKeepAliveResponse } from "./admin-codec.js";
import { GatewayError, Grpc, toGatewayError } from "./errors.js";
import { sendGatewayError } from "./http-io.js";
import { JsonStreamError, JsonValueSplitter } from "./json-scan.js";
import { encodeHeader } from "./kv-codec.js";
import { type JsonObject, ProtoReader } from "./proto-json.js";
import { STREAM_HEADERS, streamErrorLine, waitForDrain } from "./watch-session.js";

export async function serveKeepAlive(
  replica: Replica,
  request: IncomingMessage,
  response: ServerResponse,
  maxMessageChars: number,
  logger: Logger,
): Promise<void> {
  let closed = false;
  response.on("close", () => {
    closed = true;
  });
  const send = async (message: JsonObject) => {
    if (!response.headersSent) response.writeHead(200, STREAM_HEADERS);
    if (!response.write(`${JSON.stringify(message)}\n`)) await waitForDrain(response);
  };
  let decodedAny = false;
  /** Set by a malformed message after the first: the rest of the body is ignored and the response ends. */
  let requestsEnded = false;
  const decode = (text: string): number | undefined => {
    try {
      const id = decodeLeaseId(ProtoReader.ofBody(JSON.parse(text), "etcdserverpb.LeaseKeepAliveRequest"));
      decodedAny = true;
      return id;
    } catch (error) {
      if (!decodedAny) throw error;
      requestsEnded = true;
      return undefined;
    }
  };
  const renew = async (text: string) => {
    if (requestsEnded) return;
    const id = decode(text);
    if (id === undefined) return;
    let out: JsonObject;
    try {
      const renewed = await replica.leaseKeepAlive(id);
      out = encodeLeaseKeepAliveResponse(renewed, encodeHeader(replica.header(), renewed.header.revision));
    } catch (error) {
      if (!(error instanceof LeaseNotFoundError)) throw error;
      out = encodeLeaseKeepAliveResponse(
        { header: { revision: replica.kv.revision }, ID: id, TTL: 0 },
        encodeHeader(replica.header(), replica.kv.revision),
      );
    }
    if (!closed) await send({ result: out });
  };
  const splitter = new JsonValueSplitter(maxMessageChars);
  try {
    try {
      for await (const chunk of request as AsyncIterable<Buffer>) {
        // After a malformed message the body is read to its end (leaving the loop would destroy the socket).
        if (!requestsEnded) for (const text of splitter.push(chunk)) await renew(text);
        if (closed) return;
      }
      if (!requestsEnded) for (const text of splitter.end()) await renew(text);
    } catch (error) {
      if (!(error instanceof JsonStreamError)) throw error;
      for (const text of error.complete) await renew(text);
      if (!decodedAny) throw new GatewayError(Grpc.Unknown, error.message);
    }
    if (!response.headersSent) response.writeHead(200, STREAM_HEADERS);
    response.end();
  } catch (error) {
    if (closed) return;
    const mapped = toGatewayError(error);
    if (mapped.unexpected) logger.error({ err: error }, "lease keepalive failed");
    // etcd reports stream errors with code Unknown (HTTP 500) before the first answer; after it, an error line.
    if (!response.headersSent) sendGatewayError(response, new GatewayError(Grpc.Unknown, mapped.error.message));
    else response.end(`${JSON.stringify(streamErrorLine(mapped.error))}\n`);
  }
}
