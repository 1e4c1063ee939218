// Expected failures of the running replica, with etcd 3.4's message text and gRPC code so the gateway answers
// exactly like etcd would (they extend MvccError, the gateway's error shape: message + grpcCode).
import { GrpcCode, MvccError } from "../mvcc/errors.js";

const ResourceExhausted = 8;

export class NoLeaderError extends MvccError {
  constructor() {
    super("VIGIE_ERR_NO_LEADER", "etcdserver: no leader", GrpcCode.Unavailable);
  }
}

/** The request was accepted but not applied in time (lost in a leader change, or the cluster lost quorum). */
export class RequestTimeoutError extends MvccError {
  constructor() {
    super("VIGIE_ERR_REQUEST_TIMEOUT", "etcdserver: request timed out", GrpcCode.Unavailable);
  }
}

export class LeaderChangedError extends MvccError {
  constructor() {
    super("VIGIE_ERR_LEADER_CHANGED", "etcdserver: leader changed", GrpcCode.Unavailable);
  }
}

export class TooManyRequestsError extends MvccError {
  constructor() {
    super("VIGIE_ERR_TOO_MANY_REQUESTS", "etcdserver: too many requests", ResourceExhausted);
  }
}

export class ServerStoppedError extends MvccError {
  constructor() {
    super("VIGIE_ERR_SERVER_STOPPED", "etcdserver: server stopped", GrpcCode.Unavailable);
  }
}

export class MemberRemovedError extends MvccError {
  constructor() {
    super(
      "VIGIE_ERR_MEMBER_REMOVED",
      "etcdserver: the member has been permanently removed from the cluster",
      GrpcCode.FailedPrecondition,
    );
  }
}

export class MemberNotFoundError extends MvccError {
  constructor() {
    super("VIGIE_ERR_MEMBER_NOT_FOUND", "etcdserver: member not found", GrpcCode.NotFound);
  }
}

export class PeerUrlExistsError extends MvccError {
  constructor() {
    super("VIGIE_ERR_PEER_URL_EXISTS", "etcdserver: Peer URLs already exists", GrpcCode.FailedPrecondition);
  }
}

export class NotLearnerError extends MvccError {
  constructor() {
    super("VIGIE_ERR_NOT_LEARNER", "etcdserver: can only promote a learner member", GrpcCode.FailedPrecondition);
  }
}

export class LearnerNotReadyError extends MvccError {
  constructor() {
    super(
      "VIGIE_ERR_LEARNER_NOT_READY",
      "etcdserver: can only promote a learner member which is in sync with leader",
      GrpcCode.FailedPrecondition,
    );
  }
}

/** A membership change is already in progress (the core accepts one at a time). */
export class ReconfigurationError extends MvccError {
  constructor(detail: string) {
    super("VIGIE_ERR_RECONFIGURATION", `etcdserver: re-configuration failed: ${detail}`, GrpcCode.FailedPrecondition);
  }
}
