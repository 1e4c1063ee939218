// Finds where one JSON value ends in a text, with error messages worded like Go's encoding/json (the decoder
// behind etcd's gateway), so a client sees the same `unexpected EOF` / `invalid character ...` text from vigie and
// from etcd. Like Go's json.Decoder, the gateway reads ONE value and ignores whatever follows it in a unary body;
// streaming bodies (watch, keepalive) are a sequence of values, which `JsonValueSplitter` cuts apart.
import { StringDecoder } from "node:string_decoder";

export type ScanResult = { ok: true; end: number } | { ok: false; eof: boolean; message: string };

const EOF = "unexpected EOF";

class ScanError extends Error {
  constructor(
    readonly eof: boolean,
    message: string,
  ) {
    super(message);
  }
}

const GO_ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\x07": "\\a",
  "\b": "\\b",
  "\f": "\\f",
  "\v": "\\v",
};

/** A character as Go quotes it in a syntax error (strconv.Quote inside single quotes: `'x'`, `'\n'`, `'\\'`). */
export function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  const escaped = GO_ESCAPES[c];
  if (escaped !== undefined) return `'${escaped}'`;
  const code = c.charCodeAt(0);
  if (code < 0x20 || code === 0x7f) return `'\\x${code.toString(16).padStart(2, "0")}'`;
  return `'${c}'`;
}

function invalid(c: string, context: string): ScanError {
  return new ScanError(false, `invalid character ${quoteChar(c)} ${context}`);
}

function isSpace(c: string | undefined): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\r";
}

/**
 * Scans one JSON value starting at `start` (leading whitespace allowed). Never throws. When `numbers` is given,
 * the [start, end) of every number token is appended to it.
 */
export function scanJsonValue(text: string, start = 0, numbers?: Array<[number, number]>): ScanResult {
  const scanner = new Scanner(text, numbers);
  try {
    scanner.position = start;
    scanner.skipSpace();
    scanner.value();
    return { ok: true, end: scanner.position };
  } catch (error) {
    if (error instanceof ScanError) return { ok: false, eof: error.eof, message: error.message };
    throw error;
  }
}

/** Index of the first non-whitespace character at or after `start` (text.length when none). */
export function skipJsonSpace(text: string, start: number): number {
  let i = start;
  while (i < text.length && isSpace(text[i])) i++;
  return i;
}

// Recursion depth limit: a body of 100k "[" must not blow the stack (Go's decoder stops at 10000 too).
const MAX_DEPTH = 1_000;

class Scanner {
  position = 0;
  private depth = 0;
  constructor(
    private readonly text: string,
    private readonly numbers?: Array<[number, number]>,
  ) {}

  private peek(): string {
    const c = this.text[this.position];
    if (c === undefined) throw new ScanError(true, EOF);
    return c;
  }

  skipSpace(): void {
    while (isSpace(this.text[this.position])) this.position++;
  }

  value(): void {
    const c = this.peek();
    if (c === "{") this.nested(() => this.object());
    else if (c === "[") this.nested(() => this.array());
    else if (c === '"') this.string();
    else if (c === "-" || (c >= "0" && c <= "9")) this.number();
    else if (c === "t") this.literal("true");
    else if (c === "f") this.literal("false");
    else if (c === "n") this.literal("null");
    else throw invalid(c, "looking for beginning of value");
  }

  private nested(body: () => void): void {
    this.depth++;
    if (this.depth > MAX_DEPTH) throw new ScanError(false, "exceeded max depth");
    body();
    this.depth--;
  }

  private object(): void {
    this.position++; // {
    this.skipSpace();
    if (this.peek() === "}") {
      this.position++;
      return;
    }
    for (;;) {
      this.skipSpace();
      const c = this.peek();
      if (c !== '"') throw invalid(c, "looking for beginning of object key string");
      this.string();
      this.skipSpace();
      const colon = this.peek();
      if (colon !== ":") throw invalid(colon, "after object key");
      this.position++;
      this.skipSpace();
      this.value();
      this.skipSpace();
      const next = this.peek();
      this.position++;
      if (next === "}") return;
      if (next !== ",") throw invalid(next, "after object key:value pair");
    }
  }

  private array(): void {
    this.position++; // [
    this.skipSpace();
    if (this.peek() === "]") {
      this.position++;
      return;
    }
    for (;;) {
      this.skipSpace();
      this.value();
      this.skipSpace();
      const next = this.peek();
      this.position++;
      if (next === "]") return;
      if (next !== ",") throw invalid(next, "after array element");
    }
  }

  private string(): void {
    this.position++; // opening quote
    for (;;) {
      const c = this.peek();
      this.position++;
      if (c === '"') return;
      if (c < " ") throw invalid(c, "in string literal");
      if (c === "\\") {
        const escaped = this.peek();
        this.position++;
        if (escaped === "u") {
          for (let i = 0; i < 4; i++) {
            const hex = this.peek();
            if (!/[0-9a-fA-F]/.test(hex)) throw invalid(hex, "in \\u hexadecimal character escape");
            this.position++;
          }
        } else if (!'"\\/bfnrt'.includes(escaped)) {
          throw invalid(escaped, "in string escape code");
        }
      }
    }
  }

  private number(): void {
    const start = this.position;
    this.numberToken();
    this.numbers?.push([start, this.position]);
  }

  private numberToken(): void {
    if (this.peek() === "-") this.position++;
    const first = this.peek();
    if (first === "0") this.position++;
    else if (first >= "1" && first <= "9") this.digits();
    else throw invalid(first, "in numeric literal");
    if (this.text[this.position] === ".") {
      this.position++;
      const c = this.peek();
      if (!(c >= "0" && c <= "9")) throw invalid(c, "after decimal point in numeric literal");
      this.digits();
    }
    const e = this.text[this.position];
    if (e === "e" || e === "E") {
      this.position++;
      const sign = this.peek();
      if (sign === "+" || sign === "-") this.position++;
      const c = this.peek();
      if (!(c >= "0" && c <= "9")) throw invalid(c, "in exponent of numeric literal");
      this.digits();
    }
  }

  private digits(): void {
    for (;;) {
      const c = this.text[this.position];
      if (c === undefined || c < "0" || c > "9") return;
      this.position++;
    }
  }

  private literal(word: string): void {
    for (let i = 0; i < word.length; i++) {
      const c = this.peek();
      if (c !== word[i]) throw invalid(c, `in literal ${word} (expecting '${word[i]}')`);
      this.position++;
    }
  }
}

/**
 * Cuts a streamed request body (watch, keepalive) into JSON values as its chunks arrive. Bounded: a value that
 * grows past `maxValueChars` without ending is an error, so a client cannot make the server buffer forever.
 */
export class JsonValueSplitter {
  private readonly decoder = new StringDecoder("utf8");
  private buffer = "";

  constructor(private readonly maxValueChars: number) {}

  /** Adds a chunk; returns the complete values found (their text), or throws a ScanError-like Error. */
  push(chunk: Buffer): string[] {
    this.buffer += this.decoder.write(chunk);
    return this.drain(false);
  }

  /** The body ended: returns the last values; a value cut in the middle is an `unexpected EOF` error. */
  end(): string[] {
    this.buffer += this.decoder.end();
    return this.drain(true);
  }

  private drain(final: boolean): string[] {
    const values: string[] = [];
    for (;;) {
      const start = skipJsonSpace(this.buffer, 0);
      if (start === this.buffer.length) {
        this.buffer = "";
        return values;
      }
      const result = scanJsonValue(this.buffer, start);
      if (result.ok) {
        values.push(this.buffer.slice(start, result.end));
        this.buffer = this.buffer.slice(result.end);
        continue;
      }
      if (!result.eof || final) throw new JsonStreamError(result.message, values);
      if (this.buffer.length - start > this.maxValueChars) {
        throw new JsonStreamError("request is too large", values);
      }
      this.buffer = this.buffer.slice(start);
      return values;
    }
  }
}

/** A streamed body turned out malformed; `complete` holds the values that came before the bad one. */
export class JsonStreamError extends Error {
  constructor(
    message: string,
    readonly complete: string[],
  ) {
    super(message);
  }
}
