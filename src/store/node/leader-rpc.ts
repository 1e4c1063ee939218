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

export interface LeaderRpc {
  transport: PeerTransport;
  leader(): NodeId;
  timeoutMs: number;
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
    try {
      return await rpc.transport.call(leader, name, body, Math.max(100, deadlineMs - Date.now()));
    } catch (error) {
      const refused = error instanceof RemotePeerError ? refusal(error) : undefined;
      if (refused !== undefined) throw refused;
      if (Date.now() + RETRY_PAUSE_MS >= deadlineMs) throw new LeaderChangedError();
      await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
    }
  }
}
