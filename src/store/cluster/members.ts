// The member table: who is in the cluster, where to reach them (peer URLs for Raft, client URLs for the API) and
// whether they vote. It is replicated state: it changes only when a conf-change entry (whose `context` carries the
// member's info; `updateNode` carries new peer URLs) or a member's "publish attributes" entry is applied, in log
// order, so every replica agrees on it.
// It also travels inside every Raft snapshot, so a member that joins by snapshot learns it.
import assert from "node:assert/strict";
import type { ConfChange } from "../raft/types.js";
import type { MemberInfo } from "../replica.js";

/** What a conf change's `context` carries (JSON). `name`/`clientURLs` are empty until the member publishes them. */
export interface MemberContext {
  name: string;
  peerURLs: string[];
  clientURLs: string[];
}

/** What a starting member publishes about itself (a replicated entry, like etcd's `publish`). */
export interface MemberAttributes {
  name: string;
  clientURLs: string[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeMemberContext(context: MemberContext): Uint8Array {
  return encoder.encode(JSON.stringify(context));
}

export function decodeMemberContext(data: Uint8Array): MemberContext {
  if (data.length === 0) return { name: "", peerURLs: [], clientURLs: [] };
  const value = JSON.parse(decoder.decode(data)) as Partial<MemberContext>;
  return {
    name: typeof value.name === "string" ? value.name : "",
    peerURLs: Array.isArray(value.peerURLs) ? value.peerURLs.filter((u) => typeof u === "string") : [],
    clientURLs: Array.isArray(value.clientURLs) ? value.clientURLs.filter((u) => typeof u === "string") : [],
  };
}

export class MemberTable {
  private readonly members = new Map<number, MemberInfo>();
  /** Ids removed from this cluster: never accepted again (a removed member must rejoin with a new id). */
  private readonly removed = new Set<number>();

  static fromList(list: readonly MemberInfo[], removed: readonly number[] = []): MemberTable {
    const table = new MemberTable();
    for (const m of list) table.members.set(m.ID, { ...m, peerURLs: [...m.peerURLs], clientURLs: [...m.clientURLs] });
    for (const id of removed) table.removed.add(id);
    return table;
  }

  /** Replaces the whole table (a snapshot was restored). */
  replaceWith(list: readonly MemberInfo[], removed: readonly number[]): void {
    this.members.clear();
    this.removed.clear();
    for (const m of list) this.members.set(m.ID, { ...m, peerURLs: [...m.peerURLs], clientURLs: [...m.clientURLs] });
    for (const id of removed) this.removed.add(id);
  }

  get(id: number): MemberInfo | undefined {
    return this.members.get(id);
  }

  has(id: number): boolean {
    return this.members.has(id);
  }

  isRemoved(id: number): boolean {
    return this.removed.has(id);
  }

  /** Members sorted by id (stable output for `member list`). */
  list(): MemberInfo[] {
    return [...this.members.values()]
      .sort((a, b) => a.ID - b.ID)
      .map((m) => ({ ...m, peerURLs: [...m.peerURLs], clientURLs: [...m.clientURLs] }));
  }

  removedIds(): number[] {
    return [...this.removed].sort((a, b) => a - b);
  }

  byName(name: string): MemberInfo | undefined {
    for (const m of this.members.values()) if (m.name === name) return m;
    return undefined;
  }

  byPeerUrl(peerUrl: string): MemberInfo | undefined {
    for (const m of this.members.values()) if (m.peerURLs.includes(peerUrl)) return m;
    return undefined;
  }

  voterCount(): number {
    let n = 0;
    for (const m of this.members.values()) if (!m.isLearner) n++;
    return n;
  }

  /** Applies a committed conf change (after the core accepted it with `applyConfChange`). */
  applyConfChange(cc: ConfChange): void {
    const id = cc.nodeId;
    switch (cc.type) {
      case "addVoter":
      case "addLearner": {
        const context = decodeMemberContext(cc.context);
        const existing = this.members.get(id);
        this.members.set(id, {
          ID: id,
          name: context.name || existing?.name || "",
          peerURLs: context.peerURLs.length > 0 ? context.peerURLs : (existing?.peerURLs ?? []),
          clientURLs: context.clientURLs.length > 0 ? context.clientURLs : (existing?.clientURLs ?? []),
          isLearner: cc.type === "addLearner",
        });
        return;
      }
      case "promoteLearner": {
        const member = this.members.get(id);
        if (member !== undefined) member.isLearner = false;
        return;
      }
      case "removeNode":
        this.members.delete(id);
        this.removed.add(id);
        return;
      case "updateNode": {
        // Only the peer URLs change (`member update`); the name and client URLs are the member's own to publish.
        const member = this.members.get(id);
        const { peerURLs } = decodeMemberContext(cc.context);
        if (member !== undefined && peerURLs.length > 0) member.peerURLs = peerURLs;
        return;
      }
      default: {
        const never: never = cc.type;
        assert.fail(`unknown conf change ${String(never)}`);
      }
    }
  }

  /** A member published its name and client URLs (it started). Unknown ids are ignored (removed meanwhile). */
  applyAttributes(id: number, attributes: MemberAttributes): void {
    const member = this.members.get(id);
    if (member === undefined) return;
    member.name = attributes.name;
    member.clientURLs = [...attributes.clientURLs];
  }
}
