// An in-memory copy of exactly the keys and prefixes the templates read, kept current by watch events.
// Every read of a render comes from here, synchronously, so all of one render's reads see the same revision
// (`revision`), and a render costs no network round trip.
import assert from "node:assert/strict";
import { isUtf8 } from "node:buffer";
import type { Entry, KeyReader } from "../render/reader.js";

export interface Stored {
  value: string;
  modRevision: number;
  /** The bytes are not valid UTF-8: `value` holds replacement characters, which no template may render. */
  notText?: boolean;
}

/** A stored value from the store's bytes; bytes that are not UTF-8 are marked rather than silently altered. */
export function storedFrom(bytes: Buffer, modRevision: number): Stored {
  const value = bytes.toString("utf8");
  return isUtf8(bytes) ? { value, modRevision } : { value, modRevision, notText: true };
}

/** Parsed JSON values kept for the `service` helper; bounded, since values come and go. */
const PARSE_CACHE_MAX_ENTRIES = 20_000;

export class StoreMirror implements KeyReader {
  /** The revision the mirror is consistent at: every event up to it is applied, none after it. */
  revision = 0;
  private readonly values = new Map<string, Stored>();
  private readonly loadedKeys = new Set<string>();
  /** For each loaded prefix, the keys under it; and their sorted entries, rebuilt lazily after a change. */
  private readonly prefixMembers = new Map<string, Set<string>>();
  private readonly prefixEntries = new Map<string, Entry[]>();
  private readonly parseCache = new Map<string, unknown>();

  get loadedKeyCount(): number {
    return this.loadedKeys.size;
  }

  get keyCount(): number {
    return this.values.size;
  }

  /** Loaded keys and prefixes: what the watch stream must cover. */
  dependencies(): { keys: string[]; prefixes: string[] } {
    return { keys: [...this.loadedKeys], prefixes: [...this.prefixMembers.keys()] };
  }

  hasPrefix(prefix: string): boolean {
    if (this.prefixMembers.has(prefix)) return true;
    for (const loaded of this.prefixMembers.keys()) if (prefix.startsWith(loaded)) return true;
    return false;
  }

  hasKey(key: string): boolean {
    if (this.loadedKeys.has(key)) return true;
    for (const loaded of this.prefixMembers.keys()) if (key.startsWith(loaded)) return true;
    return false;
  }

  /** Whether a change to `key` concerns anything loaded (events outside are ignored). */
  covers(key: string): boolean {
    return this.hasKey(key);
  }

  getKey(key: string): string | undefined {
    return this.values.get(key)?.value;
  }

  notText(key: string): boolean {
    return this.values.get(key)?.notText === true;
  }

  getPrefix(prefix: string): readonly Entry[] {
    const cached = this.prefixEntries.get(prefix);
    if (cached !== undefined) return cached;
    let members = this.prefixMembers.get(prefix);
    if (members === undefined) {
      // A sub-prefix of a loaded prefix: filter the enclosing prefix's members.
      const enclosing = [...this.prefixMembers.keys()].find((loaded) => prefix.startsWith(loaded));
      assert.ok(enclosing !== undefined, `prefix ${prefix} is not loaded`);
      members = new Set([...this.prefixMembers.get(enclosing)!].filter((key) => key.startsWith(prefix)));
    }
    const entries = [...members]
      .sort()
      .map((key): Entry => ({ key, name: key.slice(prefix.length), value: this.values.get(key)?.value ?? "" }));
    if (this.prefixMembers.has(prefix)) this.prefixEntries.set(prefix, entries);
    return entries;
  }

  parseCached(value: string): unknown {
    if (this.parseCache.has(value)) return this.parseCache.get(value);
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      parsed = undefined;
    }
    if (this.parseCache.size >= PARSE_CACHE_MAX_ENTRIES) this.parseCache.clear();
    this.parseCache.set(value, parsed);
    return parsed;
  }

  /** Records a loaded key (present with `value`, or absent) as of the mirror's revision. */
  loadKey(key: string, stored: Stored | undefined): void {
    this.loadedKeys.add(key);
    if (stored !== undefined) this.set(key, stored);
  }

  /** Records a loaded prefix and the keys found under it. */
  loadPrefix(prefix: string, found: ReadonlyArray<[string, Stored]>): void {
    const members = new Set<string>();
    this.prefixMembers.set(prefix, members);
    this.prefixEntries.delete(prefix);
    for (const [key, stored] of found) {
      assert.ok(key.startsWith(prefix), "a prefix load returned a key outside the prefix");
      members.add(key);
      this.values.set(key, stored);
    }
  }

  /**
   * Applies a put (value) or delete (undefined) at `modRevision`. Returns whether the visible value changed.
   * Events at or below the mirror's revision are already reflected (they were part of a load) and are skipped.
   */
  apply(key: string, value: string | undefined, modRevision: number, notText = false): boolean {
    if (modRevision <= this.revision || !this.covers(key)) return false;
    const before = this.values.get(key);
    if (value === undefined) {
      if (before === undefined) return false;
      this.values.delete(key);
      this.touchPrefixes(key, false);
      return true;
    }
    this.set(key, notText ? { value, modRevision, notText } : { value, modRevision });
    return before?.value !== value || (before.notText === true) !== notText;
  }

  /** Takes over everything `other` loaded (a scratch mirror filled by a load that completed as a whole). */
  absorb(other: StoreMirror): void {
    const { keys, prefixes } = other.dependencies();
    for (const key of keys) {
      const stored = other.values.get(key);
      this.loadKey(key, stored === undefined ? undefined : { ...stored });
    }
    for (const prefix of prefixes) {
      const found: Array<[string, Stored]> = [];
      for (const key of other.prefixMembers.get(prefix) ?? []) {
        const stored = other.values.get(key);
        if (stored !== undefined) found.push([key, { ...stored }]);
      }
      this.loadPrefix(prefix, found);
    }
  }

  /** Drops everything: used before a full resync, with the old content kept by the caller to diff against. */
  snapshotValues(): Map<string, { value: string; notText: boolean }> {
    const copy = new Map<string, { value: string; notText: boolean }>();
    for (const [key, stored] of this.values) copy.set(key, { value: stored.value, notText: stored.notText === true });
    return copy;
  }

  clear(): void {
    this.values.clear();
    this.loadedKeys.clear();
    this.prefixMembers.clear();
    this.prefixEntries.clear();
    this.revision = 0;
  }

  private set(key: string, stored: Stored): void {
    const isNew = !this.values.has(key);
    this.values.set(key, stored);
    this.touchPrefixes(key, isNew ? true : undefined);
  }

  /** Invalidates sorted listings of the prefixes containing `key`; adds or removes it from their members. */
  private touchPrefixes(key: string, present: boolean | undefined): void {
    for (const [prefix, members] of this.prefixMembers) {
      if (!key.startsWith(prefix)) continue;
      if (present === true) members.add(key);
      else if (present === false) members.delete(key);
      this.prefixEntries.delete(prefix);
    }
  }
}
