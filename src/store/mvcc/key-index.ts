// The ordered key index: a sorted list split into bounded chunks (a flat two-level B-tree). Inserting a key in
// a 100,000-key space moves at most one chunk's slice instead of the whole array, and ranges walk chunks in order.
// Keys are "binary strings" (latin1: one char per byte, 0..255), so JS string comparison IS bytewise comparison,
// and V8 stores them as compact one-byte strings. A Map beside the chunks gives O(1) point lookups.
import assert from "node:assert";

/** Chunks split at this size: small enough that a splice is cheap, large enough to keep the chunk array short. */
const MAX_CHUNK_ITEMS = 512;

export interface Keyed {
  readonly key: string;
}

export class KeyIndex<T extends Keyed> {
  private chunks: T[][] = [];
  private readonly byKey = new Map<string, T>();

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): T | undefined {
    return this.byKey.get(key);
  }

  /** Adds an item whose key is not present yet. */
  insert(item: T): void {
    assert(!this.byKey.has(item.key), "key already indexed");
    this.byKey.set(item.key, item);
    if (this.chunks.length === 0) {
      this.chunks.push([item]);
      return;
    }
    const chunkIndex = this.chunkFor(item.key);
    const chunk = this.chunks[chunkIndex]!;
    chunk.splice(lowerBound(chunk, item.key), 0, item);
    if (chunk.length > MAX_CHUNK_ITEMS) {
      const upper = chunk.splice(chunk.length >> 1);
      this.chunks.splice(chunkIndex + 1, 0, upper);
    }
  }

  /** Replaces the item indexed under `item.key` (which must be present) by `item`, in place. */
  replace(item: T): void {
    assert(this.byKey.has(item.key), "replace of an unindexed key");
    this.byKey.set(item.key, item);
    const chunk = this.chunks[this.chunkFor(item.key)]!;
    const position = lowerBound(chunk, item.key);
    assert(chunk[position]?.key === item.key, "key index out of sync with its map");
    chunk[position] = item;
  }

  /**
   * Calls `visit` for each item with start <= key < end in key order (`end` null = no upper bound) until it
   * returns false.
   */
  forEachInRange(start: string, end: string | null, visit: (item: T) => boolean | undefined): void {
    if (end !== null && end <= start) {
      return;
    }
    if (this.chunks.length === 0) return;
    const first = this.chunkFor(start);
    for (let c = first; c < this.chunks.length; c++) {
      const chunk = this.chunks[c]!;
      for (let i = c === first ? lowerBound(chunk, start) : 0; i < chunk.length; i++) {
        const item = chunk[i]!;
        if (end !== null && item.key >= end) return;
        if (visit(item) === false) return;
      }
    }
  }

  /**
   * Replaces each item by what `rewrite` returns for it (an item of the same key), or removes it when that is
   * undefined (used by compaction: one linear pass, then re-chunk).
   */
  rewriteAll(rewrite: (item: T) => T | undefined): void {
    const kept: T[] = [];
    for (const chunk of this.chunks) {
      for (const item of chunk) {
        const replacement = rewrite(item);
        if (replacement === undefined) continue;
        assert(replacement.key === item.key, "a rewrite keeps the key");
        kept.push(replacement);
      }
    }
    this.rebuild(kept);
  }

  /** Replaces the content with `sorted` (strictly ascending keys). */
  rebuild(sorted: T[]): void {
    this.chunks = [];
    this.byKey.clear();
    const half = MAX_CHUNK_ITEMS >> 1;
    for (let i = 0; i < sorted.length; i += half) this.chunks.push(sorted.slice(i, i + half));
    for (let i = 0; i < sorted.length; i++) {
      const item = sorted[i]!;
      assert(i === 0 || sorted[i - 1]!.key < item.key, "rebuild needs strictly ascending keys");
      this.byKey.set(item.key, item);
    }
  }

  /** All items in key order (snapshots, tests). */
  all(): T[] {
    return this.chunks.flat();
  }

  /** The first chunk whose last key is >= key, or the last chunk when key is beyond every chunk. */
  private chunkFor(key: string): number {
    let lo = 0;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const chunk = this.chunks[mid]!;
      if (chunk[chunk.length - 1]!.key < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** The first position in `items` whose key is >= key. */
function lowerBound<T extends Keyed>(items: readonly T[], key: string): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid]!.key < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
