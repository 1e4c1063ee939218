// A small binary writer/reader (LEB128 varints, length-prefixed bytes) shared by the command codec and the
// key-space snapshot. Numbers are JS safe integers, so varints use arithmetic instead of 32-bit bit operations.
import assert from "node:assert";

const INITIAL_CAPACITY_BYTES = 256;

/**
 * Writes a non-negative safe integer as an unsigned LEB128 varint at `offset` (the caller made room: at most 8
 * bytes) and returns the offset after it.
 */
export function putUint(buffer: Uint8Array, offset: number, value: number): number {
  assert(Number.isSafeInteger(value) && value >= 0, `uint out of range: ${value}`);
  let at = offset;
  let rest = value;
  while (rest >= 0x80) {
    buffer[at++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  buffer[at++] = rest;
  return at;
}

/** How many bytes putUint writes for `value`. */
export function uintSize(value: number): number {
  let bytes = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) bytes++;
  return bytes;
}

export class ByteWriter {
  private buffer: Uint8Array;
  private length = 0;

  constructor(initialCapacityBytes = INITIAL_CAPACITY_BYTES) {
    this.buffer = new Uint8Array(initialCapacityBytes);
  }

  private reserve(extraBytes: number): void {
    const needed = this.length + extraBytes;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }

  byte(value: number): this {
    this.reserve(1);
    this.buffer[this.length++] = value;
    return this;
  }

  bool(value: boolean): this {
    return this.byte(value ? 1 : 0);
  }

  /** A non-negative safe integer as an unsigned LEB128 varint (1 byte below 128, at most 8 bytes). */
  uint(value: number): this {
    this.reserve(8);
    this.length = putUint(this.buffer, this.length, value);
    return this;
  }

  /** Any safe integer: a sign byte then the magnitude (negatives are rare: only user-supplied operands). */
  int(value: number): this {
    assert(Number.isSafeInteger(value), `int out of range: ${value}`);
    this.byte(value < 0 ? 1 : 0);
    return this.uint(Math.abs(value));
  }

  bytes(value: Uint8Array): this {
    this.uint(value.length);
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
    return this;
  }

  /** A binary (latin1) string as length-prefixed bytes, without an intermediate Buffer. */
  latin1(value: string): this {
    this.uint(value.length);
    this.reserve(value.length);
    for (let i = 0; i < value.length; i++) this.buffer[this.length++] = value.charCodeAt(i);
    return this;
  }

  /** A copy of the written bytes. */
  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }

  get byteLength(): number {
    return this.length;
  }
}

/** Reads what ByteWriter wrote; every read checks bounds and throws `onError(detail)` on malformed input. */
export class ByteReader {
  private offset = 0;
  constructor(
    private readonly buffer: Uint8Array,
    private readonly fail: (detail: string) => Error,
  ) {}

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  get position(): number {
    return this.offset;
  }

  byte(): number {
    if (this.offset >= this.buffer.length) throw this.fail(`truncated at byte ${this.offset}`);
    return this.buffer[this.offset++]!;
  }

  bool(): boolean {
    const value = this.byte();
    if (value > 1) throw this.fail(`invalid boolean ${value} at byte ${this.offset - 1}`);
    return value === 1;
  }

  uint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (!Number.isSafeInteger(result)) throw this.fail(`varint too large at byte ${this.offset}`);
        return result;
      }
      scale *= 0x80;
    }
    throw this.fail(`varint too long at byte ${this.offset}`);
  }

  int(): number {
    const negative = this.bool();
    const magnitude = this.uint();
    return negative ? -magnitude : magnitude;
  }

  /** A view into the input (no copy): callers that keep it must copy. */
  bytes(): Uint8Array {
    const length = this.uint();
    if (length > this.remaining) throw this.fail(`byte string of ${length} bytes overruns input at ${this.offset}`);
    const view = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return view;
  }

  /** Length-prefixed bytes as a binary (latin1) string. */
  latin1(): string {
    const view = this.bytes();
    return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString("latin1");
  }

  expectEnd(): void {
    if (this.remaining !== 0) throw this.fail(`${this.remaining} trailing bytes at ${this.offset}`);
  }
}
