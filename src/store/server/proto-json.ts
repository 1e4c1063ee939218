// Proto3 JSON as etcd 3.4's gateway (gogo jsonpb) reads and writes it.
// In: each field by its proto name or its lowerCamel JSON name (exact spelling; `ttl` is NOT `TTL`), null = default,
//     int64 as a JSON number or a decimal string, bytes as standard padded base64, enums by name or number; unknown
//     fields are ignored. Type errors carry the messages Go prints, so a client sees the same text as from etcd.
// Out: fields in proto order, int64 as decimal strings, bytes as base64, and every field at its default value
//     (0, false, "", empty list) omitted.
import { invalidArgument } from "./errors.js";
import { quoteChar, scanJsonValue, skipJsonSpace } from "./json-scan.js";

export type JsonObject = Record<string, unknown>;

/** A JSON number a double cannot hold as Go reads it ("1e2", "1.0", "-0", 2^63-1): its text, from http-io.ts. */
export class RawNumber {
  constructor(readonly text: string) {}
}

/** Marks a number's text as a JSON string; random per process, so no client string can pass for one. */
const NUMBER_MARK = `\u0000number-${Math.random().toString(36).slice(2)}:`;

export function markNumberText(text: string): string {
  return NUMBER_MARK + text;
}

/** A JSON object (a message), as opposed to an array, a RawNumber or a scalar. */
function isJsonObject(value: unknown): boolean {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof RawNumber);
}

/** A decoded JSON value with marked number texts turned into RawNumber. */
function unmark(value: unknown): unknown {
  return typeof value === "string" && value.startsWith(NUMBER_MARK)
    ? new RawNumber(value.slice(NUMBER_MARK.length))
    : value;
}

/** protoc's JSON name: `prev_kv` -> `prevKv`; names without `_` (`ID`, `TTL`, `peerURLs`) are unchanged. */
export function lowerCamel(protoName: string): string {
  return protoName.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * lowerCamel, remembered: every request reads a handful of fields and the regex replace was ~1% of a leader's CPU
 * per put. Bounded by construction: the names are the proto field names in this code, never a client's.
 */
const camelNames = new Map<string, string>();

function camelNameOf(protoName: string): string {
  let camelName = camelNames.get(protoName);
  if (camelName === undefined) {
    camelName = lowerCamel(protoName);
    camelNames.set(protoName, camelName);
  }
  return camelName;
}

/** Go's name for a JSON value's kind, as used in `json: cannot unmarshal <kind> into Go value of type T`. */
function jsonKind(value: unknown): string {
  if (Array.isArray(value)) return "array";
  if (value instanceof RawNumber) return "number";
  if (typeof value === "object") return "object";
  return typeof value; // string | number | boolean
}

function cannotUnmarshal(value: unknown, goType: string): never {
  const kind = jsonKind(value);
  const shown = kind === "boolean" ? "bool" : kind;
  throw invalidArgument(`json: cannot unmarshal ${shown} into Go value of type ${goType}`);
}

/** Decodes standard base64 with padding exactly as strictly as Go's `base64.StdEncoding` (CR/LF ignored). */
export function decodeBase64(text: string): Buffer {
  const clean = text.replace(/[\r\n]/g, "");
  let inQuantum = 0;
  for (let i = 0; i < clean.length; i++) {
    const c = clean.charCodeAt(i);
    const isAlphabet =
      (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 /* + */ || c === 47; /* / */
    if (isAlphabet) {
      inQuantum = (inQuantum + 1) % 4;
      continue;
    }
    if (c === 61 /* = */ && inQuantum >= 2) {
      // Padding: "xx==" or "xxx=", and nothing after it.
      const needed = 4 - inQuantum;
      for (let k = 1; k < needed; k++) {
        if (clean[i + k] !== "=") throw illegalBase64(i + k <= clean.length ? Math.min(i + k, clean.length) : i);
      }
      const after = i + needed;
      if (after < clean.length) throw illegalBase64(after);
      return Buffer.from(clean, "base64");
    }
    throw illegalBase64(i);
  }
  // Go reports a missing padding at the start of the unfinished quantum.
  if (inQuantum !== 0) throw illegalBase64(clean.length - inQuantum);
  return Buffer.from(clean, "base64");
}

function illegalBase64(position: number): Error {
  return invalidArgument(`illegal base64 data at input byte ${position}`);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * int64 from a JSON number or string. Values beyond 2^53 (valid int64 but not exact in JS) are clamped to
 * ±MAX_SAFE_INTEGER: vigie never hands out such revisions or ids, so a clamped value is "future" / "not found".
 */
export function decodeInt64(value: unknown, unsigned = false): number {
  const goType = unsigned ? "uint64" : "int64";
  let text: string;
  if (value instanceof RawNumber) {
    text = value.text;
  } else if (typeof value === "number") {
    text = String(value);
  } else if (typeof value === "string") {
    text = value;
  } else {
    return cannotUnmarshal(value, goType);
  }
  if (typeof value === "string") {
    const token = quotedNumberToken(value, goType);
    if (token === undefined) return 0;
    text = token;
  }
  const big = /^-?\d+$/.test(text) ? BigInt(text) : undefined;
  const [min, max] = unsigned ? [0n, UINT64_MAX] : [INT64_MIN, INT64_MAX];
  if (big === undefined || big < min || big > max) {
    throw invalidArgument(`json: cannot unmarshal number ${text} into Go value of type ${goType}`);
  }
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
  if (big < BigInt(Number.MIN_SAFE_INTEGER)) return Number.MIN_SAFE_INTEGER;
  return Number(big);
}

/**
 * The number inside a quoted int64, found as etcd finds it: gogo jsonpb strips the quotes and hands the rest to
 * Go's json.Unmarshal, so whitespace around the number is fine, "null" is 0 (undefined here), and anything else
 * gets the error Go's decoder gives for that text as a whole JSON document ("05": '5' after top-level value).
 */
function quotedNumberToken(value: string, goType: string): string | undefined {
  // Go sees the raw bytes between the quotes: a character JSON must escape arrived as an escape sequence, and
  // Go's scan stops at its backslash.
  const raw = value.replace(/["\\\u0000-\u001f]/g, "\\");
  // Go's decoder steps one space at the end of the input: "-" fails as "' ' in numeric literal", not as EOF.
  const scanned = scanJsonValue(`${raw} `);
  if (!scanned.ok) throw invalidArgument(scanned.eof ? "unexpected end of JSON input" : scanned.message);
  const after = skipJsonSpace(raw, scanned.end);
  if (after < raw.length) throw invalidArgument(`invalid character ${quoteChar(raw[after]!)} after top-level value`);
  const token = raw.slice(skipJsonSpace(raw, 0), scanned.end);
  const first = token[0];
  if (first === "n") return undefined;
  if (first === '"') return cannotUnmarshal("", goType);
  if (first === "t" || first === "f") return cannotUnmarshal(true, goType);
  if (first === "{") return cannotUnmarshal({}, goType);
  if (first === "[") return cannotUnmarshal([], goType);
  return token;
}

/**
 * Go decodes a JSON array into []byte element by element (`[97]` is "a", `[null]` one zero byte); a bad element
 * does not stop it, and the first one's error is the answer.
 */
function bytesOfArray(items: readonly unknown[]): Buffer {
  const out = Buffer.alloc(items.length);
  let firstError: Error | undefined;
  for (const [index, item] of items.entries()) {
    if (item === null) continue;
    const text = item instanceof RawNumber ? item.text : typeof item === "number" ? String(item) : undefined;
    try {
      if (text === undefined) cannotUnmarshal(item, "uint8");
      else if (!/^\d+$/.test(text) || Number(text) > 255) {
        throw invalidArgument(`json: cannot unmarshal number ${text} into Go value of type uint8`);
      } else out[index] = Number(text);
    } catch (error) {
      firstError ??= error as Error;
    }
  }
  if (firstError !== undefined) throw firstError;
  return out;
}

/** Reads one JSON object (a proto message) field by field. */
export class ProtoReader {
  constructor(
    private readonly object: JsonObject,
    /** Go type name of the message, for enum error messages (`etcdserverpb.RangeRequest`). */
    readonly goName: string,
  ) {}

  /** Wraps a decoded top-level body; anything but an object is refused like Go's decoder refuses it. */
  static ofBody(body: unknown, goName: string): ProtoReader {
    const value = unmark(body);
    if (value === null || value === undefined) return new ProtoReader({}, goName);
    if (!isJsonObject(value)) {
      return cannotUnmarshal(value, "map[string]json.RawMessage");
    }
    return new ProtoReader(value as JsonObject, goName);
  }

  /** A field's JSON value; etcd's jsonpb favours the lowerCamel spelling when both are given, even a null one. */
  raw(protoName: string): unknown {
    const camelName = camelNameOf(protoName);
    const name = camelName !== protoName && Object.hasOwn(this.object, camelName) ? camelName : protoName;
    const value = Object.hasOwn(this.object, name) ? this.object[name] : undefined;
    return value === null ? undefined : unmark(value);
  }

  bytes(protoName: string): Buffer {
    const value = this.raw(protoName);
    if (value === undefined) return Buffer.alloc(0);
    if (Array.isArray(value)) return bytesOfArray(value.map(unmark));
    if (typeof value !== "string") return cannotUnmarshal(value, "[]uint8");
    return decodeBase64(value);
  }

  int64(protoName: string): number {
    const value = this.raw(protoName);
    return value === undefined ? 0 : decodeInt64(value);
  }

  /** uint64 (member ids); same clamping as `int64`. */
  uint64(protoName: string): number {
    const value = this.raw(protoName);
    return value === undefined ? 0 : decodeInt64(value, true);
  }

  bool(protoName: string): boolean {
    const value = this.raw(protoName);
    if (value === undefined) return false;
    if (typeof value !== "boolean") return cannotUnmarshal(value, "bool");
    return value;
  }

  string(protoName: string): string {
    const value = this.raw(protoName);
    if (value === undefined) return "";
    if (typeof value !== "string") return cannotUnmarshal(value, "string");
    return value;
  }

  strings(protoName: string): string[] {
    return this.list(protoName).map((item) => (typeof item === "string" ? item : cannotUnmarshal(item, "string")));
  }

  /** An enum field: its name, or its number mapped through `names` (index = number). */
  enumValue<T extends string>(protoName: string, names: readonly T[], enumGoName: string): T {
    const value = this.raw(protoName);
    if (value === undefined) return names[0]!;
    if (value instanceof RawNumber || (typeof value === "number" && !Number.isInteger(value))) {
      // Go reads an enum number into an int32: "-0" is 0, anything else that is no plain integer is refused.
      const text = value instanceof RawNumber ? value.text : String(value);
      if (text === "-0") return names[0]!;
      throw invalidArgument(`json: cannot unmarshal number ${text} into Go value of type ${enumGoName}`);
    }
    if (typeof value === "number" && Number.isInteger(value)) {
      const name = names[value];
      // Go accepts any number for an open proto3 enum; vigie refuses those it cannot represent.
      if (name === undefined) throw invalidArgument(`unknown value ${value} for enum ${enumGoName}`);
      return name;
    }
    if (typeof value === "string") {
      if ((names as readonly string[]).includes(value)) return value as T;
      throw invalidArgument(`unknown value ${JSON.stringify(value)} for enum ${enumGoName}`);
    }
    return cannotUnmarshal(value, enumGoName);
  }

  /** A nested message, or undefined when absent. */
  message(protoName: string, goName: string): ProtoReader | undefined {
    const value = this.raw(protoName);
    if (value === undefined) return undefined;
    if (!isJsonObject(value)) return cannotUnmarshal(value, "map[string]json.RawMessage");
    return new ProtoReader(value as JsonObject, goName);
  }

  messages(protoName: string, goName: string): ProtoReader[] {
    return this.list(protoName).map((item) => {
      if (item === null) return new ProtoReader({}, goName);
      if (!isJsonObject(item)) return cannotUnmarshal(item, "map[string]json.RawMessage");
      return new ProtoReader(item as JsonObject, goName);
    });
  }

  private list(protoName: string): unknown[] {
    const value = this.raw(protoName);
    if (value === undefined) return [];
    if (!Array.isArray(value)) return cannotUnmarshal(value, "[]json.RawMessage");
    return value.map(unmark);
  }
}

// ---- output: proto3 JSON with defaults omitted ----

export function putInt(target: JsonObject, name: string, value: number | undefined): void {
  if (value !== undefined && value !== 0) target[name] = String(value);
}

export function putBytes(target: JsonObject, name: string, value: Uint8Array | undefined): void {
  if (value !== undefined && value.length > 0) {
    target[name] = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
  }
}

export function putBool(target: JsonObject, name: string, value: boolean | undefined): void {
  if (value === true) target[name] = true;
}

export function putString(target: JsonObject, name: string, value: string | undefined): void {
  if (value !== undefined && value !== "") target[name] = value;
}

export function putList<T>(
  target: JsonObject,
  name: string,
  values: readonly T[] | undefined,
  encode: (v: T) => unknown,
) {
  if (values !== undefined && values.length > 0) target[name] = values.map(encode);
}

/** An enum at its default (index 0) is omitted; others are written by name. */
export function putEnum(target: JsonObject, name: string, value: string | undefined, defaultName: string): void {
  if (value !== undefined && value !== defaultName) target[name] = value;
}
