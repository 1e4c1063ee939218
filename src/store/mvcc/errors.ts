// Expected errors of the key space. Each carries etcd 3.4's exact message text (the gateway puts it in the
// `error`/`message` fields) and the gRPC status code etcd uses (the gateway maps it to an HTTP status).
import { VigieError } from "../../errors.js";

/** gRPC status codes used by etcd's errors. */
export const GrpcCode = {
  InvalidArgument: 3,
  NotFound: 5,
  FailedPrecondition: 9,
  OutOfRange: 11,
  Unavailable: 14,
} as const;

export abstract class MvccError extends VigieError {
  /** gRPC status code (3 InvalidArgument, 5 NotFound, 9 FailedPrecondition, 11 OutOfRange). */
  readonly grpcCode: number;
  constructor(code: string, etcdMessage: string, grpcCode: number) {
    super(code, etcdMessage);
    this.grpcCode = grpcCode;
  }
}

export class KeyNotProvidedError extends MvccError {
  constructor() {
    super("VIGIE_ERR_KEY_NOT_PROVIDED", "etcdserver: key is not provided", GrpcCode.InvalidArgument);
  }
}

/** Put with `ignore_value` on a key that does not exist. */
export class KeyNotFoundError extends MvccError {
  constructor() {
    super("VIGIE_ERR_KEY_NOT_FOUND", "etcdserver: key not found", GrpcCode.InvalidArgument);
  }
}

/** Put with `ignore_value` and a non-empty value. */
export class ValueProvidedError extends MvccError {
  constructor() {
    super("VIGIE_ERR_VALUE_PROVIDED", "etcdserver: value is provided", GrpcCode.InvalidArgument);
  }
}

/** Put with `ignore_lease` and a non-zero lease. */
export class LeaseProvidedError extends MvccError {
  constructor() {
    super("VIGIE_ERR_LEASE_PROVIDED", "etcdserver: lease is provided", GrpcCode.InvalidArgument);
  }
}

export class TooManyTxnOpsError extends MvccError {
  constructor() {
    super("VIGIE_ERR_TOO_MANY_TXN_OPS", "etcdserver: too many operations in txn request", GrpcCode.InvalidArgument);
  }
}

/** Two puts (or a put and an overlapping delete) to the same key in one txn branch. */
export class DuplicateKeyError extends MvccError {
  constructor() {
    super("VIGIE_ERR_DUPLICATE_KEY", "etcdserver: duplicate key given in txn request", GrpcCode.InvalidArgument);
  }
}

export class RequestTooLargeError extends MvccError {
  constructor() {
    super("VIGIE_ERR_REQUEST_TOO_LARGE", "etcdserver: request is too large", GrpcCode.InvalidArgument);
  }
}

export class CompactedError extends MvccError {
  /** The store's compacted revision at the time of the error. */
  readonly compactRevision: number;
  constructor(compactRevision: number) {
    super("VIGIE_ERR_COMPACTED", "etcdserver: mvcc: required revision has been compacted", GrpcCode.OutOfRange);
    this.compactRevision = compactRevision;
  }
}

export class FutureRevisionError extends MvccError {
  constructor() {
    super("VIGIE_ERR_FUTURE_REVISION", "etcdserver: mvcc: required revision is a future revision", GrpcCode.OutOfRange);
  }
}

export class LeaseNotFoundError extends MvccError {
  constructor() {
    super("VIGIE_ERR_LEASE_NOT_FOUND", "etcdserver: requested lease not found", GrpcCode.NotFound);
  }
}

export class LeaseExistsError extends MvccError {
  constructor() {
    super("VIGIE_ERR_LEASE_EXISTS", "etcdserver: lease already exists", GrpcCode.FailedPrecondition);
  }
}

export class LeaseTtlTooLargeError extends MvccError {
  constructor() {
    super("VIGIE_ERR_LEASE_TTL_TOO_LARGE", "etcdserver: too large lease TTL", GrpcCode.OutOfRange);
  }
}

/** A request field etcd would reject as invalid (the message says which). */
export class InvalidArgumentError extends MvccError {
  constructor(message: string) {
    super("VIGIE_ERR_INVALID_ARGUMENT", `etcdserver: ${message}`, GrpcCode.InvalidArgument);
  }
}

/** Keepalive / expiry decisions asked of a node that is not the leader. */
export class LeaseNotLeaderError extends MvccError {
  constructor() {
    super("VIGIE_ERR_NOT_LEADER", "etcdserver: not leader", GrpcCode.Unavailable);
  }
}

/** A command's bytes could not be decoded (a corrupted or foreign Raft entry): a clear error, never a guess. */
export class CommandDecodeError extends VigieError {
  constructor(detail: string) {
    super("VIGIE_ERR_COMMAND_DECODE", `cannot decode store command: ${detail}`);
  }
}

/** A snapshot given to `KvStore.restore` is not valid. */
export class SnapshotDecodeError extends VigieError {
  constructor(detail: string) {
    super("VIGIE_ERR_SNAPSHOT_DECODE", `cannot decode key-space snapshot: ${detail}`);
  }
}
