// The simulator's replicated state machine: a string KV map with put and compare-and-swap, plus a session table
// that applies each client command at most once (Raft thesis §6.3) — the network may duplicate a forwarded
// proposal, and the log may then hold the same command twice.
import assert from "node:assert/strict";

export type KvCommand =
  | { client: number; seq: number; op: "put"; key: string; value: string }
  | { client: number; seq: number; op: "cas"; key: string; expected: string | null; value: string };

export type KvResult = "ok" | "failed";

export interface KvApplied {
  client: number;
  seq: number;
  result: KvResult;
  /** True when the session table recognised a command it had already applied (it had no effect). */
  duplicate: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SEPARATOR = "\u0001";
const NULL_VALUE = "\u0002";

/** A compact text form (op, client, seq, key, value[, expected]) — the simulator applies millions of these. */
export function encodeCommand(cmd: KvCommand): Uint8Array {
  const fields = [cmd.op, cmd.client, cmd.seq, cmd.key, cmd.value];
  if (cmd.op === "cas") fields.push(cmd.expected ?? NULL_VALUE);
  return asciiBytes(fields.join(SEPARATOR));
}

function asciiBytes(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) return encoder.encode(text); // keys and values are ASCII in the simulator; be safe anyway
    bytes[i] = code;
  }
  return bytes;
}

/** Entry data is shared by every replica in the simulator (messages carry references): each is decoded once and
 * the result kept on the byte array itself (a WeakMap lookup per application cost more than the decoding). */
type DataWithCommand = Uint8Array & { decodedCommand?: KvCommand };

export function decodeCommand(bytes: Uint8Array): KvCommand {
  const data = bytes as DataWithCommand;
  const known = data.decodedCommand;
  if (known !== undefined) return known;
  const [op, client, seq, key, value, expected] = decoder.decode(data).split(SEPARATOR);
  assert.ok((op === "put" || op === "cas") && key !== undefined && value !== undefined, "sim kv: bad command");
  // Plain literals, not spreads: a spread-built object reads its fields several times slower, and every
  // replica reads each decoded command again at every application.
  const clientId = Number(client);
  const seqNumber = Number(seq);
  const cmd: KvCommand =
    op === "put"
      ? { client: clientId, seq: seqNumber, key, value, op }
      : {
          client: clientId,
          seq: seqNumber,
          key,
          value,
          op: "cas",
          expected: expected === NULL_VALUE ? null : (expected ?? null),
        };
  data.decodedCommand = cmd;
  return cmd;
}

interface Session {
  seq: number;
  result: KvResult;
}

export class KvStateMachine {
  private data = new Map<string, string>();
  private sessions = new Map<number, Session>();

  get(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  apply(cmd: KvCommand): KvApplied {
    const session = this.sessions.get(cmd.client);
    if (session !== undefined && cmd.seq <= session.seq) {
      // Only the latest command's result is remembered; an older duplicate's answer is never awaited (each
      // client has one command outstanding), so "failed" is a placeholder nobody reads.
      const result = cmd.seq === session.seq ? session.result : "failed";
      return { client: cmd.client, seq: cmd.seq, result, duplicate: true };
    }
    let result: KvResult = "ok";
    if (cmd.op === "put") {
      this.data.set(cmd.key, cmd.value);
    } else if ((this.data.get(cmd.key) ?? null) === cmd.expected) {
      this.data.set(cmd.key, cmd.value);
    } else {
      result = "failed";
    }
    this.sessions.set(cmd.client, { seq: cmd.seq, result });
    return { client: cmd.client, seq: cmd.seq, result, duplicate: false };
  }

  serialize(): Uint8Array {
    const sessions = [...this.sessions].map(([c, s]) => [c, s.seq, s.result]);
    return encoder.encode(JSON.stringify({ data: [...this.data], sessions }));
  }

  static restore(bytes: Uint8Array): KvStateMachine {
    const kv = new KvStateMachine();
    if (bytes.length === 0) return kv;
    const parsed = JSON.parse(decoder.decode(bytes)) as {
      data: [string, string][];
      sessions: [number, number, KvResult][];
    };
    kv.data = new Map(parsed.data);
    kv.sessions = new Map(parsed.sessions.map(([c, seq, result]) => [c, { seq, result }]));
    return kv;
  }

  /** A canonical rendering of the content, for comparing replicas. */
  fingerprint(): string {
    return JSON.stringify([...this.data].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}
