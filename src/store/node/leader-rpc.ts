// Calls an operation that only the leader can carry out (lease keepalive and time-to-live, a learner's promotion)
// on the current leader over the peer transport: waits a little for a leader to be elected, retries when the member
// asked has stopped leading, and hands the leader's own refusal back to the caller.
import type { NodeId } from "../raft/types.js";
import { RemotePeerError } from "../transport/peer-client.js";
import type { PeerTransport } from "../transport/transport.js";
import { LeaderChangedError, NoLeaderError } from "./errors.js";

/** Between two tries while there is no leader or the one asked stopped leading. */
const RETRY_PAUSE_MS = 25;

/** Thrown by a served operation on a member that no longer leads; the caller tries the new leader. */
export class NotLeaderHereError extends Error {
  readonly code = "VIGIE_ERR_NOT_LEADER";
  constructor() {
    super("this member is not the leader");
  }
}

/**
 * Thrown when this member itself became the leader while waiting: there is no peer to call, the caller serves the
 * operation locally. (Calling "the leader" over the transport would fail until the deadline.)
 */
export class LeaderIsHereError extends Error {
  constructor() {
    super("this member is the leader now");
  }
}

export interface LeaderRpc {
  transport: PeerTransport;
  leader(): NodeId;
  timeoutMs: number;
  /**
   * This member's id: when it becomes the leader, LeaderIsHereError is thrown instead of calling it. Required: a
   * caller without it kept calling "the leader", itself, until its deadline (membership changes did, 5 s).
   */
  self: NodeId;
  /**
   * For idempotent operations (lease keepalive, time-to-live): a call still waiting on a member that is no longer
   * the leader is abandoned and sent to the new one. A leader that is stopped (SIGSTOP, a frozen VM) or cut off
   * never answers, and waiting for it would use up the whole timeout while the new leader is ready.
   */
  retryWhenLeaderChanges?: boolean;
}

/** How often an in-flight call checks whether leadership moved away from the member it asked. */
const LEADER_CHANGE_POLL_MS = 25;

class LeaderMovedError extends Error {}

/** `attempt` (sent to `asked`), or a LeaderMovedError as soon as `leader()` names another member (or none). */
function unlessLeaderMoves<T>(attempt: Promise<T>, asked: NodeId, leader: () => NodeId): Promise<T> {
  attempt.catch(() => {}); // an abandoned attempt's failure is of no interest
  let poll: NodeJS.Timeout | undefined;
  const moved = new Promise<never>((_resolve, reject) => {
    poll = setInterval(() => {
      if (leader() !== asked) reject(new LeaderMovedError());
    }, LEADER_CHANGE_POLL_MS);
  });
  return Promise.race([attempt, moved]).finally(() => clearInterval(poll));
}

/**
 * `name` with `body` on the leader. `refusal` turns the leader's answer of an expected error (its code) into the
 * error to throw here, or returns undefined to retry; anything else is retried until the deadline.
 */
export async function callLeader(
  rpc: LeaderRpc,
  name: string,
  body: unknown,
  refusal: (error: RemotePeerError) => Error | undefined,
): Promise<unknown> {
  const deadlineMs = Date.now() + rpc.timeoutMs;
  for (;;) {
    const leader = rpc.leader();
    if (leader === 0) {
      if (Date.now() + RETRY_PAUSE_MS >= deadlineMs) throw new NoLeaderError();
      await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
      continue;
    }
    if (leader === rpc.self) throw new LeaderIsHereError();
    try {
      const attempt = rpc.transport.call(leader, name, body, Math.max(100, deadlineMs - Date.now()));
      return await (rpc.retryWhenLeaderChanges ? unlessLeaderMoves(attempt, leader, rpc.leader) : attempt);
    } catch (error) {
      const refused = error instanceof RemotePeerError ? refusal(error) : undefined;
      if (refused !== undefined) throw refused;
      if (Date.now() + RETRY_PAUSE_MS >= deadlineMs) throw new LeaderChangedError();
      await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
    }
  }
}
