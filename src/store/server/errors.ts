// Errors as etcd's gateway answers them: a body `{"error": M, "message": M, "code": gRPC code}` and an HTTP status
// derived from the gRPC code with grpc-gateway v1's table (etcd 3.4 embeds that gateway). Every failure the server
// can meet is turned into one of these; nothing else reaches the wire.
import { VigieError } from "../../errors.js";
import { ProposalDroppedError } from "../raft/errors.js";

/** gRPC status codes (google.golang.org/grpc/codes). */
export const Grpc = {
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;

const HTTP_STATUS_BY_GRPC_CODE: Record<number, number> = {
  0: 200,
  1: 408, // grpc-gateway v1 maps Canceled to Request Timeout
  2: 500,
  3: 400,
  4: 504,
  5: 404,
  6: 409,
  7: 403,
  8: 429,
  9: 412, // observed on etcd 3.4: "lease already exists" -> 412
  10: 409,
  11: 400,
  12: 501,
  13: 500,
  14: 503,
  15: 500,
  16: 401,
};

export function httpStatusForGrpcCode(code: number): number {
  return HTTP_STATUS_BY_GRPC_CODE[code] ?? 500;
}

/** An error answered to the client, with etcd's wording. */
export class GatewayError extends VigieError {
  constructor(
    readonly grpcCode: number,
    message: string,
  ) {
    super("VIGIE_ERR_API", message);
  }

  get httpStatus(): number {
    return httpStatusForGrpcCode(this.grpcCode);
  }

  body(): { error: string; message: string; code: number } {
    return { error: this.message, message: this.message, code: this.grpcCode };
  }
}

export function invalidArgument(message: string): GatewayError {
  return new GatewayError(Grpc.InvalidArgument, message);
}

/** etcd's messages for a proposal the cluster could not take right now. */
const DROP_MESSAGES: Partial<Record<ProposalDroppedError["reason"], string>> = {
  noLeader: "etcdserver: no leader",
  notLeader: "etcdserver: not leader",
  uncommittedLimit: "etcdserver: too many requests",
  tooManyReads: "etcdserver: too many requests",
  confChangePending: "etcdserver: unhealthy cluster",
};

/**
 * Maps anything thrown while serving a request to the client-facing error. Store errors (MvccError and any
 * error the replica throws with a numeric `grpcCode`) keep etcd's message and code; a dropped proposal becomes
 * etcd's `no leader`-style Unavailable; other expected errors are Unknown with their message; a programmer error
 * is an opaque Internal error (the caller logs it).
 */
export function toGatewayError(error: unknown): { error: GatewayError; unexpected: boolean } {
  if (error instanceof GatewayError) return { error, unexpected: false };
  const grpcCode = (error as { grpcCode?: unknown } | null)?.grpcCode;
  if (error instanceof Error && typeof grpcCode === "number") {
    return { error: new GatewayError(grpcCode, error.message), unexpected: false };
  }
  if (error instanceof ProposalDroppedError) {
    return {
      error: new GatewayError(Grpc.Unavailable, DROP_MESSAGES[error.reason] ?? error.message),
      unexpected: false,
    };
  }
  if (error instanceof VigieError) return { error: new GatewayError(Grpc.Unknown, error.message), unexpected: false };
  return { error: new GatewayError(Grpc.Internal, "etcdserver: internal error"), unexpected: true };
}
