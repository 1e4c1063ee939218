// Key and range-end conventions shared by range, delete, compare and watch (etcd's semantics).
/** A key as a binary string: one char per byte, so `<` on strings is bytewise order. */
export function toBinaryKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/**
 * The exclusive end of a range as a binary string: undefined = just `key` (empty range_end); null = no upper bound
 * (range_end "\0"); otherwise range_end itself.
 */
export function toBinaryRangeEnd(_key: Uint8Array, rangeEnd: Uint8Array | undefined): string | null | undefined {
  if (rangeEnd === undefined || rangeEnd.length === 0) return undefined;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return null;
  return toBinaryKey(rangeEnd);
}

/** The range_end that selects every key starting with `prefix` (etcd's clientv3.GetPrefixRangeEnd). */
export function prefixRangeEnd(prefix: Uint8Array): Uint8Array {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  // All 0xff (or empty): no finite end, so every key >= prefix.
  return Uint8Array.of(0);
}

/** Bytewise comparison of two byte strings (-1, 0, 1). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(
    Buffer.from(a.buffer, a.byteOffset, a.byteLength),
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}
