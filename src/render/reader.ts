// What a template can read, and the record of what it read. The watch layer implements `KeyReader` over its
// in-memory mirror of the store; the render layer only sees this interface, so rendering stays synchronous and fast.

/**
 * The longest service instance id the `service` helper accepts (ids land verbatim in nginx/haproxy configs); the
 * agent refuses to register a longer one. Here, in a module without dependencies, so both sides can import it.
 */
export const INSTANCE_ID_MAX_CHARS = 128;

/** One key under a prefix, as the `ls` and `tree` helpers return it. */
export interface Entry {
  /** The full key, e.g. `/services/web/web-1`. */
  key: string;
  /** The key relative to the prefix that listed it, e.g. `web-1`. */
  name: string;
  value: string;
}

export interface KeyReader {
  /** The store revision every read of this render sees. */
  readonly revision: number;
  /** Whether the key (or a prefix containing it) has been loaded from the store. */
  hasKey(key: string): boolean;
  hasPrefix(prefix: string): boolean;
  /** The value, or undefined when the key does not exist. Only meaningful when `hasKey(key)`. */
  getKey(key: string): string | undefined;
  /** Every key under `prefix`, sorted by key. Only meaningful when `hasPrefix(prefix)`. */
  getPrefix(prefix: string): readonly Entry[];
  /** Whether the key's value is not UTF-8 text (its string then holds replacement characters). */
  notText?(key: string): boolean;
  /** Parsed-value cache for the `service` helper: the same value string parses once, not once per render. */
  parseCached?(value: string): unknown;
}

/** The keys and prefixes one render read. The watch layer subscribes to exactly these. */
export class Dependencies {
  readonly keys = new Set<string>();
  readonly prefixes = new Set<string>();
  /** Reads of data not yet loaded: the render's output is meaningless until they are loaded. */
  readonly missingKeys = new Set<string>();
  readonly missingPrefixes = new Set<string>();

  get complete(): boolean {
    return this.missingKeys.size === 0 && this.missingPrefixes.size === 0;
  }

  /** Whether a change to `key` can change this render's output. */
  covers(key: string): boolean {
    if (this.keys.has(key)) return true;
    for (const prefix of this.prefixes) if (key.startsWith(prefix)) return true;
    return false;
  }
}
