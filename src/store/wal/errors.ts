// Expected WAL/snapshot failures. Corruption always names the file and byte offset: the operator must be able
// to look at the exact place, and start-up must stop instead of silently dropping synced data.
import { VigieError } from "../../errors.js";

/** The log is damaged somewhere other than a torn tail (or a segment is missing): start-up refuses. */
export class WalCorruptError extends VigieError {
  readonly file: string;
  readonly offset: number;
  constructor(file: string, offset: number, detail: string) {
    super("VIGIE_ERR_WAL_CORRUPT", `WAL corrupt: ${file} at byte ${offset}: ${detail}`);
    this.file = file;
    this.offset = offset;
  }
}

/** A write or fsync failed: the WAL refuses every later append (after a failed fsync nothing is known). */
export class WalFailedError extends VigieError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super("VIGIE_ERR_WAL_FAILED", `WAL unusable: ${detail}`, options);
  }
}

/** Appends are arriving faster than the disk syncs them and the pending queue is full. */
export class WalBusyError extends VigieError {
  constructor(pendingBytes: number, limitBytes: number) {
    super("VIGIE_ERR_WAL_BUSY", `WAL busy: ${pendingBytes} bytes waiting for fsync (limit ${limitBytes})`);
  }
}

/** The WAL was closed. */
export class WalClosedError extends VigieError {
  constructor() {
    super("VIGIE_ERR_WAL_CLOSED", "WAL is closed");
  }
}

/** A snapshot file failed its checksum or is malformed. */
export class SnapshotCorruptError extends VigieError {
  readonly file: string;
  constructor(file: string, detail: string) {
    super("VIGIE_ERR_SNAPSHOT_CORRUPT", `snapshot corrupt: ${file}: ${detail}`);
    this.file = file;
  }
}
