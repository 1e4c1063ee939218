// Helpers of the etcd-compatibility suite (api-suite.ts): build expected etcd responses and compare real ones
// field by field after replacing the values that legitimately differ between two servers.
import * as assert from "uvu/assert";
import type { RawAnswer } from "./api-client.js";

export const b64 = (text: string) => Buffer.from(text).toString("base64");
export const ID = "<id>";

/** Replaces the header's ids and term (checked to be decimal strings) so two servers compare equal. */
export function normalize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalize);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    if (key === "header" && inner !== null && typeof inner === "object") {
      const header = { ...(inner as Record<string, unknown>) };
      for (const field of ["cluster_id", "member_id", "raft_term"]) {
        if (header[field] !== undefined) {
          assert.match(String(header[field]), /^\d+$/, `header.${field} is a decimal string`);
          header[field] = ID;
        }
      }
      out[key] = header;
    } else {
      out[key] = normalize(inner);
    }
  }
  return out;
}

/** A top-level header at `revision` (undefined: no revision field, like member list). */
export function header(revision?: number): Record<string, unknown> {
  if (revision === undefined) return { cluster_id: ID, member_id: ID, raft_term: ID };
  return { cluster_id: ID, member_id: ID, revision: String(revision), raft_term: ID };
}

export function expectOk(answer: RawAnswer, expected: Record<string, unknown>, what: string): void {
  assert.is(answer.status, 200, `${what}: HTTP status (body ${answer.text.slice(0, 300)})`);
  assert.equal(normalize(answer.json), expected, what);
}

export function expectError(answer: RawAnswer, status: number, code: number, message: string, what: string): void {
  assert.equal({ status: answer.status, body: answer.json }, { status, body: { error: message, message, code } }, what);
}

export function kv(key: string, value: string, create: number, mod: number, version: number, lease?: string) {
  const out: Record<string, unknown> = {
    key: b64(key),
    create_revision: String(create),
    mod_revision: String(mod),
    version: String(version),
  };
  if (value !== "") out.value = b64(value);
  if (lease !== undefined) out.lease = lease;
  return out;
}

/** What each section of the suite gets: its checks run in order against one target. */
export interface SuiteContext {
  /** Registers a check; `url` is the target's client URL. Skipped (never run) while the target is missing. */
  check(title: string, body: (url: string) => Promise<void>): void;
  /** A revision relative to the store's revision when the suite started. */
  rev(offset: number): number;
  /** The key prefix every check writes under. */
  p: string;
}
