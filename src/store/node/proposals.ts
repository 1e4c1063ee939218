// How a proposal the core refused maps to etcd's answer, and when it is worth retrying.
import { ProposalDroppedError } from "../raft/errors.js";
import {
  LeaderChangedError,
  MemberRemovedError,
  NoLeaderError,
  ReconfigurationError,
  TooManyRequestsError,
} from "./errors.js";

/** No leader known right now: the request may be retried shortly (an election is under way). */
export function isNoLeader(error: unknown): boolean {
  return error instanceof ProposalDroppedError && (error.reason === "noLeader" || error.reason === "notLeader");
}

/** etcd's error for a request the core dropped. */
export function mapDropped(error: unknown): Error {
  if (!(error instanceof ProposalDroppedError)) return error as Error;
  switch (error.reason) {
    case "noLeader":
    case "notLeader":
      return new NoLeaderError();
    case "uncommittedLimit":
      return new TooManyRequestsError();
    case "transferInProgress":
      return new LeaderChangedError();
    case "notMember":
      return new MemberRemovedError();
    case "confChangePending":
    case "invalidConfChange":
      return new ReconfigurationError(error.message);
    default:
      return error;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
