// Expected failures of the Raft core. Programmer errors (broken invariants) are `node:assert` failures instead.
import { VigieError } from "../../errors.js";

/** Why a local request was not accepted; stable strings the driver can map to API errors. */
export type DropReason =
  | "noLeader"
  | "uncommittedLimit"
  | "transferInProgress"
  | "confChangePending"
  | "notMember"
  | "invalidConfChange"
  | "notLeader"
  | "invalidTransferee"
  | "tooManyReads";

/** A proposal, conf change, read or transfer request could not be accepted; retrying later may succeed. */
export class ProposalDroppedError extends VigieError {
  readonly reason: DropReason;
  constructor(reason: DropReason, message: string) {
    super("VIGIE_ERR_PROPOSAL_DROPPED", `raft: proposal dropped (${reason}): ${message}`);
    this.reason = reason;
  }
}

/** The requested log position was compacted into a snapshot (thrown by storage, handled by the core). */
export class CompactedError extends VigieError {
  constructor(index: number, firstIndex: number) {
    super("VIGIE_ERR_RAFT_COMPACTED", `raft: index ${index} is compacted (first available index ${firstIndex})`);
  }
}

/** A snapshot older than the one already stored was offered to storage. */
export class SnapshotOutOfDateError extends VigieError {
  constructor(index: number, currentIndex: number) {
    super(
      "VIGIE_ERR_RAFT_SNAPSHOT_OUT_OF_DATE",
      `raft: snapshot at ${index} is older than the stored one at ${currentIndex}`,
    );
  }
}
