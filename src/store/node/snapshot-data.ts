// The bytes of a Raft snapshot: the member table (replicated state that lives outside the key space) followed by
// the key space's own snapshot. Layout: 4-byte big-endian length of a JSON header, the header, then KvStore bytes.
import { VigieError } from "../../errors.js";
import type { MemberInfo } from "../replica.js";

export interface SnapshotHeader {
  version: 1;
  members: MemberInfo[];
  removed: number[];
}

export class SnapshotDataError extends VigieError {
  constructor(reason: string) {
    super("VIGIE_ERR_SNAPSHOT_DATA", `raft snapshot data: ${reason}`);
  }
}

/**
 * `encodeKv(headroom)` returns the key space's bytes behind `headroom` bytes of its buffer (KvStore.snapshot), where
 * the header goes: 15 MB of keys are not copied again just to put a few hundred bytes in front of them.
 */
export function encodeSnapshotData(header: SnapshotHeader, encodeKv: (headroom: number) => Uint8Array): Uint8Array {
  const json = Buffer.from(JSON.stringify(header));
  const out = encodeKv(4 + json.length);
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(0, json.length);
  out.set(json, 4);
  return out;
}

export function decodeSnapshotData(data: Uint8Array): { header: SnapshotHeader; kv: Uint8Array } {
  if (data.length < 4) throw new SnapshotDataError(`${data.length} bytes, too short`);
  const length = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
  if (4 + length > data.length) throw new SnapshotDataError(`header of ${length} bytes overruns ${data.length}`);
  let header: SnapshotHeader;
  try {
    header = JSON.parse(Buffer.from(data.buffer, data.byteOffset + 4, length).toString("utf8")) as SnapshotHeader;
  } catch (error) {
    throw new SnapshotDataError(`header is not JSON (${(error as Error).message})`);
  }
  if (header.version !== 1 || !Array.isArray(header.members) || !Array.isArray(header.removed)) {
    throw new SnapshotDataError("header has an unknown shape");
  }
  return { header, kv: data.subarray(4 + length) };
}
