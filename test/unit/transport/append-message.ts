// One `app` message for the transport tests: from, to and index given, one small entry after `index` (its data
// names the index), the rest at defaults that any receiver accepts.
import type { Message } from "../../../src/store/raft/types.js";

export function appendMessage(from: number, to: number, index: number, extra: Partial<Message> = {}): Message {
  return {
    type: "app",
    from,
    to,
    term: 1,
    logTerm: index === 0 ? 0 : 1,
    index,
    entries: [{ term: 1, index: index + 1, type: "normal", data: new Uint8Array([index % 256, 1, 2]) }],
    commit: index,
    reject: false,
    rejectHint: 0,
    context: "",
    snapshot: null,
    commitNotice: false,
    ...extra,
  };
}
