// The core emits one `app` message per proposal (it replicates each as soon as it is proposed), so a busy leader
// hands the transport dozens of consecutive appends for the same peer in one batch. Consecutive appends that
// continue each other are merged into one before they are encoded: the follower then steps one message and answers
// once, instead of once per entry. Merging is exact: receiving the merged message is the same as receiving the
// parts in order (same prefix check, entries concatenated, the later — higher — commit index).
// Proposals a follower forwards (`prop`) are merged the same way: the leader then appends them in one step and
// replicates them in one append. Conf changes are never merged (the core accepts one pending at a time).
import type { Message } from "../raft/types.js";

/** Upper bound on entries in one merged append (the core's own per-message cap applies to each part). */
const MAX_MERGED_ENTRIES = 4096;
/** Upper bound on the entry data of one merged message, far below a frame's limit (protocol.ts). */
const MAX_MERGED_DATA_BYTES = 8 * 1024 * 1024;

function dataBytes(message: Message): number {
  let bytes = 0;
  for (const e of message.entries) bytes += e.data.length;
  return bytes;
}

/** Whether the two messages' entries together stay within both merge limits (`previousBytes`: its data). */
function fits(previous: Message, previousBytes: number, next: Message, nextBytes: number): boolean {
  return (
    previous.entries.length + next.entries.length <= MAX_MERGED_ENTRIES &&
    previousBytes + nextBytes <= MAX_MERGED_DATA_BYTES
  );
}

function continues(previous: Message, previousBytes: number, next: Message, nextBytes: number): boolean {
  const last = previous.entries[previous.entries.length - 1];
  return (
    next.type === "app" &&
    previous.type === "app" &&
    next.to === previous.to &&
    next.term === previous.term &&
    last !== undefined &&
    next.entries.length > 0 &&
    next.index === last.index &&
    next.logTerm === last.term &&
    fits(previous, previousBytes, next, nextBytes)
  );
}

function onlyNormal(message: Message): boolean {
  for (const e of message.entries) if (e.type !== "normal") return false;
  return true;
}

function sameProposalBatch(previous: Message, previousBytes: number, next: Message, nextBytes: number): boolean {
  return (
    previous.type === "prop" &&
    next.type === "prop" &&
    next.to === previous.to &&
    onlyNormal(previous) &&
    onlyNormal(next) &&
    fits(previous, previousBytes, next, nextBytes)
  );
}

/**
 * Merges runs of appends to one peer that continue each other, and runs of forwarded proposals; other messages
 * keep their place and order.
 */
export function coalesceAppends(messages: readonly Message[]): Message[] {
  const out: Message[] = [];
  let previousBytes = 0;
  for (const message of messages) {
    const previous = out[out.length - 1];
    const bytes = message.entries.length === 0 ? 0 : dataBytes(message);
    if (previous !== undefined && sameProposalBatch(previous, previousBytes, message, bytes)) {
      out[out.length - 1] = { ...previous, entries: [...previous.entries, ...message.entries] };
      previousBytes += bytes;
    } else if (previous !== undefined && continues(previous, previousBytes, message, bytes)) {
      out[out.length - 1] = {
        ...previous,
        entries: [...previous.entries, ...message.entries],
        commit: Math.max(previous.commit, message.commit),
      };
      previousBytes += bytes;
    } else {
      out.push(message);
      previousBytes = bytes;
    }
  }
  return out;
}
