// Membership arithmetic shared by the core and its restart path: how one conf change transforms a ConfState,
// whether a leader may propose it, and the bootstrap entries every initial member writes identically.
import { encodeConfChange } from "./codec.js";
import type { ConfChange, ConfState, Entry, NodeId } from "./types.js";

/** The membership after applying `cc`. Deterministic and total: a change that makes no sense is a no-op, so every
 * node that applies the same committed entry reaches the same membership. */
export function nextConfState(cs: ConfState, cc: ConfChange): ConfState {
  const voters = new Set(cs.voters);
  const learners = new Set(cs.learners);
  switch (cc.type) {
    case "addVoter":
      learners.delete(cc.nodeId);
      voters.add(cc.nodeId);
      break;
    case "addLearner":
      if (!voters.has(cc.nodeId)) learners.add(cc.nodeId);
      break;
    case "promoteLearner":
      if (learners.delete(cc.nodeId)) voters.add(cc.nodeId);
      break;
    case "removeNode":
      // Removing the last voter would leave a cluster that can never commit again; leaders refuse to propose it.
      if (voters.has(cc.nodeId) && voters.size === 1) break;
      voters.delete(cc.nodeId);
      learners.delete(cc.nodeId);
      break;
    case "updateNode":
      break;
  }
  return { voters: sorted(voters), learners: sorted(learners) };
}

/**
 * Whether a leader with membership `cs` may propose `cc`: a change that would do nothing is refused as invalid.
 * `updateNode` changes no configuration by design (it carries a member's new peer URLs): valid for any member.
 */
export function isValidConfChange(cs: ConfState, cc: ConfChange): boolean {
  const isVoter = cs.voters.includes(cc.nodeId);
  const isLearner = cs.learners.includes(cc.nodeId);
  switch (cc.type) {
    case "addVoter":
      return !isVoter;
    case "addLearner":
      return !isVoter && !isLearner;
    case "promoteLearner":
      return isLearner;
    case "removeNode":
      return isLearner || (isVoter && cs.voters.length > 1);
    case "updateNode":
      return isVoter || isLearner;
  }
}

/**
 * The first entries of a new cluster's log (term 1): one conf change per initial member, voters then learners,
 * in id order. Every initial member derives the same entries from the same lists, so they are committed by
 * construction, and a node joining later learns the initial membership by replaying them.
 */
export function bootstrapEntries(voters: readonly NodeId[], learners: readonly NodeId[]): Entry[] {
  const changes: ConfChange[] = [
    ...sorted(voters).map((nodeId) => ({ type: "addVoter" as const, nodeId, context: new Uint8Array(0) })),
    ...sorted(learners).map((nodeId) => ({ type: "addLearner" as const, nodeId, context: new Uint8Array(0) })),
  ];
  return changes.map((cc, i) => ({ term: 1, index: i + 1, type: "confChange" as const, data: encodeConfChange(cc) }));
}

function sorted(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort((a, b) => a - b);
}
