// The text `vigie txn` reads on standard input: etcdctl 3.4's txn format, so that failover scripts written for
// etcdctl run unchanged. Three sections, each ended by an empty line (the last one also by the end of the input):
//
//   value("/db/master") = "10.0.0.1"        compares: value|val, version|ver, create|c, mod|m, lease
//                                            ("=", "!=", "<", ">"; keys and values quoted as Go's %q)
//   put /db/master 10.0.0.2                 requests if every compare holds: put, get, del with their flags
//
//   get /db/master                          requests otherwise
//
// Like etcdctl, nothing is sent unless all three sections are complete: a producer that died half-way (or empty
// input) must not commit half a transaction. The input is bytes: keys and values typed raw keep their exact bytes.
// etcdctl panics or prints a usage page on a malformed line; here every problem names the line.
import { UsageError } from "../errors.js";
import type { Compare, TxnOp } from "../store/client.js";
import { TXN_MAX_OPS } from "../store/client.js";
import { hexToId } from "./output.js";

/** A request and how to print its answer (`get --keys-only` prints keys alone). */
export interface ParsedOp {
  op: TxnOp;
  keysOnly: boolean;
}

export interface ParsedTxn {
  compare: Compare[];
  success: ParsedOp[];
  failure: ParsedOp[];
}

const TARGETS: Readonly<Record<string, Compare["target"]>> = {
  value: "VALUE",
  val: "VALUE",
  version: "VERSION",
  ver: "VERSION",
  create: "CREATE",
  c: "CREATE",
  mod: "MOD",
  m: "MOD",
  lease: "LEASE",
};

const RESULTS: Readonly<Record<string, Compare["result"]>> = {
  "=": "EQUAL",
  // etcdctl panics on "=="; it can only mean "=".
  "==": "EQUAL",
  "!=": "NOT_EQUAL",
  "<": "LESS",
  ">": "GREATER",
};

const SECTION_NAMES = ["compares", "success requests", "failure requests"];

export function parseTxn(input: Buffer): ParsedTxn {
  // latin1: one character per byte, so that raw bytes come back unchanged (see readQuoted and tokenize).
  const lines = input.toString("latin1").split("\n");
  if (lines.at(-1) === "") lines.pop();
  const sections: Array<Array<{ line: string; number: number }>> = [[], [], []];
  let section = 0;
  for (const [index, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "") {
      section++;
      continue;
    }
    if (section > 2) throw new UsageError(`txn: line ${index + 1}: text after the failure requests`);
    sections[section]!.push({ line, number: index + 1 });
  }
  if (section < 3) {
    throw new UsageError(
      `txn: the input ends inside its ${SECTION_NAMES[section]} (each of the three sections ends with an empty ` +
        "line, as in etcdctl's format): nothing was sent",
    );
  }
  const [compares, success, failure] = sections as [(typeof sections)[0], (typeof sections)[0], (typeof sections)[0]];
  for (const [name, ops] of [
    ["success", success],
    ["failure", failure],
  ] as const) {
    if (ops.length > TXN_MAX_OPS) {
      throw new UsageError(`txn: ${ops.length} ${name} requests, at most ${TXN_MAX_OPS} in one transaction`);
    }
  }
  return {
    compare: compares.map(({ line, number }) => parseCompare(line, number)),
    success: success.map(({ line, number }) => parseOp(line, number)),
    failure: failure.map(({ line, number }) => parseOp(line, number)),
  };
}

/** An error naming the line, shown as the text it was (the line is held one character per byte). */
function failer(line: string, number: number): (why: string) => UsageError {
  return (why) => new UsageError(`txn: line ${number}: ${why}: ${Buffer.from(line, "latin1").toString("utf8")}`);
}

function parseCompare(line: string, number: number): Compare {
  const fail = failer(line, number);
  const target = /^\s*([a-z]+)\(/.exec(line);
  const kind = target === null ? undefined : TARGETS[target[1]!];
  if (target === null || kind === undefined) {
    throw fail('not a comparison like value("KEY") = "VALUE" (value, version, create, mod or lease)');
  }
  let position = target[0].length;
  const key = readQuoted(line, position, fail);
  position = key.end;
  if (line[position] !== ")") throw fail('expected ")" after the key');
  const operator = /^\s*(!=|==|=|<|>)\s*/.exec(line.slice(position + 1));
  const result = operator === null ? undefined : RESULTS[operator[1]!];
  if (operator === null || result === undefined) throw fail('expected "=", "!=", "<" or ">"');
  position += 1 + operator[0].length;
  const operand = readQuoted(line, position, fail);
  if (line.slice(operand.end).trim() !== "") throw fail("text after the compared value");
  if (kind === "VALUE") return { key: key.bytes, result, target: kind, value: operand.bytes };
  const text = operand.bytes.toString("utf8");
  if (!/^-?\d+$/.test(text)) throw fail(`${target[1]} compares with a whole number, got "${text}"`);
  const whole = Number(text);
  if (kind === "LEASE") return { key: key.bytes, result, target: kind, lease: text };
  if (!Number.isSafeInteger(whole)) throw fail(`${text} is too large`);
  if (kind === "VERSION") return { key: key.bytes, result, target: kind, version: whole };
  if (kind === "CREATE") return { key: key.bytes, result, target: kind, createRevision: whole };
  return { key: key.bytes, result, target: kind, modRevision: whole };
}

function parseOp(line: string, number: number): ParsedOp {
  const fail = failer(line, number);
  const words = tokenize(line, fail);
  const [command, ...rest] = words;
  const positional: Buffer[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < rest.length; i++) {
    const word = rest[i]!;
    const text = word.toString("latin1");
    if (!text.startsWith("--")) {
      positional.push(word);
      continue;
    }
    const eq = text.indexOf("=");
    const name = eq === -1 ? text.slice(2) : text.slice(2, eq);
    if (eq !== -1) flags.set(name, text.slice(eq + 1));
    else if (VALUE_FLAGS.has(name) && rest[i + 1] !== undefined) flags.set(name, rest[++i]!.toString("latin1"));
    else flags.set(name, true);
  }
  const kind = command?.toString("utf8");
  const allowed = kind === undefined ? undefined : OP_FLAGS[kind];
  if (allowed === undefined) throw fail("a request is put, get or del");
  for (const name of flags.keys()) {
    if (!allowed.includes(name)) throw fail(`${kind} takes ${allowed.map((f) => `--${f}`).join(", ")}, not --${name}`);
  }
  const wholeNumber = (name: string): number | undefined => {
    const value = flags.get(name);
    if (value === undefined) return undefined;
    if (value === true || !/^\d+$/.test(value)) throw fail(`--${name} expects a whole number`);
    return Number(value);
  };
  const switchOn = (name: string): boolean => {
    const value = flags.get(name);
    if (value === undefined || value === true) return value === true;
    // Go's flag package: --prefix=true, --prefix=false (and its other spellings of a boolean).
    if (/^(1|t|T|TRUE|true|True)$/.test(value)) return true;
    if (/^(0|f|F|FALSE|false|False)$/.test(value)) return false;
    throw fail(`--${name} is a switch: give it alone, or =true or =false`);
  };
  const choice = <T extends string>(name: string, choices: Readonly<Record<string, T>>): T | undefined => {
    const value = flags.get(name);
    if (value === undefined) return undefined;
    const chosen = value === true ? undefined : choices[value.toUpperCase()];
    if (chosen === undefined) throw fail(`--${name} is one of ${Object.keys(choices).join(", ")}`);
    return chosen;
  };
  let key = positional[0];
  if (key === undefined) throw fail(`${kind} needs a key`);
  // etcdctl's "every key from here": an empty key with --from-key starts at the first key.
  if (key.length === 0 && switchOn("from-key")) key = Buffer.from([0]);
  if (kind === "put") {
    if (positional.length !== 2) throw fail("put takes KEY VALUE");
    const lease = flags.get("lease");
    if (lease === true) throw fail("--lease expects a hexadecimal ID");
    let leaseId: string | undefined;
    try {
      leaseId = lease === undefined ? undefined : hexToId(lease, "--lease", "lease");
    } catch (error) {
      throw fail((error as Error).message);
    }
    return {
      op: {
        put: key,
        value: positional[1]!,
        prevKv: switchOn("prev-kv"),
        ...(leaseId === undefined ? {} : { lease: leaseId }),
      },
      keysOnly: false,
    };
  }
  if (positional.length > 2) throw fail(`${kind} takes KEY [RANGE_END]`);
  const rangeEnd = rangeEndOf(positional[1], switchOn("prefix"), switchOn("from-key"), fail);
  if (kind === "get") {
    const limit = wholeNumber("limit");
    const revision = wholeNumber("rev");
    const sortOrder = choice("order", SORT_ORDERS);
    const sortTarget = choice("sort-by", SORT_TARGETS);
    // Accepted for etcdctl's scripts, which pass them; etcdctl's txn ignores both: every read is at the transaction's
    // own revision, and its answers print keys and values whatever --print-value-only says.
    choice("consistency", CONSISTENCIES);
    switchOn("print-value-only");
    return {
      op: {
        range: key,
        ...rangeEnd,
        keysOnly: switchOn("keys-only"),
        ...(limit === undefined ? {} : { limit }),
        ...(revision === undefined ? {} : { revision }),
        // etcdctl sorts by key, ascending, once an order is given without a target.
        ...(sortOrder === undefined ? {} : { sortOrder, sortTarget: sortTarget ?? "KEY" }),
        ...(sortOrder === undefined && sortTarget !== undefined ? { sortOrder: "ASCEND" as const, sortTarget } : {}),
      },
      keysOnly: switchOn("keys-only"),
    };
  }
  return { op: { deleteRange: key, ...rangeEnd, prevKv: switchOn("prev-kv") }, keysOnly: false };
}

/** Flags that take a value, as `--flag=value` or `--flag value`. */
const VALUE_FLAGS: ReadonlySet<string> = new Set(["lease", "limit", "rev", "order", "sort-by", "consistency"]);

const OP_FLAGS: Readonly<Record<string, readonly string[]>> = {
  put: ["lease", "prev-kv"],
  get: ["prefix", "from-key", "keys-only", "print-value-only", "limit", "rev", "order", "sort-by", "consistency"],
  del: ["prefix", "from-key", "prev-kv"],
};

const SORT_ORDERS = { ASCEND: "ASCEND", DESCEND: "DESCEND" } as const;
const SORT_TARGETS = { CREATE: "CREATE", KEY: "KEY", MODIFY: "MOD", VALUE: "VALUE", VERSION: "VERSION" } as const;
const CONSISTENCIES = { L: "l", S: "s" } as const;

function rangeEndOf(
  given: Buffer | undefined,
  prefix: boolean,
  fromKey: boolean,
  fail: (why: string) => UsageError,
): { prefix?: boolean; rangeEnd?: Buffer } {
  if ([given !== undefined, prefix, fromKey].filter(Boolean).length > 1) {
    throw fail("give one of RANGE_END, --prefix and --from-key");
  }
  if (given !== undefined) return { rangeEnd: given };
  if (prefix) return { prefix: true };
  // etcd's "every key from this one on": a range end of "\0".
  if (fromKey) return { rangeEnd: Buffer.from([0]) };
  return {};
}

/** Words separated by spaces; a word that starts with a double quote is a Go-quoted string (bytes allowed). */
function tokenize(line: string, fail: (why: string) => UsageError): Buffer[] {
  const words: Buffer[] = [];
  let position = 0;
  for (;;) {
    while (line[position] === " " || line[position] === "\t") position++;
    if (position >= line.length) return words;
    if (line[position] === '"' || line[position] === "`") {
      const quoted = readQuoted(line, position, fail);
      words.push(quoted.bytes);
      position = quoted.end;
      continue;
    }
    const start = position;
    while (position < line.length && line[position] !== " " && line[position] !== "\t") position++;
    words.push(Buffer.from(line.slice(start, position), "latin1"));
  }
}

const SIMPLE_ESCAPES: Readonly<Record<string, number>> = {
  a: 7,
  b: 8,
  f: 12,
  n: 10,
  r: 13,
  t: 9,
  v: 11,
  "\\": 92,
  '"': 34,
  "'": 39,
};

/**
 * A Go string literal (as etcdctl reads keys and values) starting at `start` in a line held one character per byte:
 * the bytes it denotes and the position after its closing quote. Double-quoted, with escapes (\xHH and octal give
 * raw bytes, so keys that are not UTF-8 work), or backquoted, raw.
 */
export function readQuoted(
  line: string,
  start: number,
  fail: (why: string) => UsageError,
): { bytes: Buffer; end: number } {
  if (line[start] === "`") {
    const end = line.indexOf("`", start + 1);
    if (end === -1) throw fail("a quoted string is not closed");
    return { bytes: Buffer.from(line.slice(start + 1, end), "latin1"), end: end + 1 };
  }
  if (line[start] !== '"') throw fail("expected a double-quoted string");
  const bytes: number[] = [];
  let i = start + 1;
  while (i < line.length) {
    const char = line[i]!;
    if (char === '"') return { bytes: Buffer.from(bytes), end: i + 1 };
    if (char !== "\\") {
      bytes.push(line.charCodeAt(i));
      i++;
      continue;
    }
    const marker = line[i + 1];
    if (marker === undefined) break;
    const simple = SIMPLE_ESCAPES[marker];
    if (simple !== undefined) {
      bytes.push(simple);
      i += 2;
    } else if (marker === "x" && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
      bytes.push(Number.parseInt(line.slice(i + 2, i + 4), 16));
      i += 4;
    } else if (/^[0-7]{3}$/.test(line.slice(i + 1, i + 4)) && Number.parseInt(line.slice(i + 1, i + 4), 8) < 256) {
      bytes.push(Number.parseInt(line.slice(i + 1, i + 4), 8));
      i += 4;
    } else if (
      (marker === "u" || marker === "U") &&
      /^[0-9a-fA-F]+$/.test(line.slice(i + 2, i + (marker === "u" ? 6 : 10)))
    ) {
      const digits = marker === "u" ? 4 : 8;
      const codePoint = Number.parseInt(line.slice(i + 2, i + 2 + digits), 16);
      if (codePoint > 0x10ffff) throw fail(`\\${marker} escape beyond Unicode`);
      bytes.push(...Buffer.from(String.fromCodePoint(codePoint), "utf8"));
      i += 2 + digits;
    } else {
      throw fail(`unknown escape \\${marker} in a quoted string`);
    }
  }
  throw fail("a quoted string is not closed");
}
