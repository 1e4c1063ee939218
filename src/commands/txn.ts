// `vigie txn`: one atomic transaction read from standard input in etcdctl's format (see txn-parse.ts), such as the
// compare-and-swap a failover script uses so that two of them cannot both move `/db/master`. It prints what etcdctl
// prints: SUCCESS or FAILURE, then each answer after an empty line as `put`, `get` and `del` print theirs; `-w json`
// prints etcdctl's JSON. Both outcomes exit 0: the compares deciding is not an error. With `-i` (etcdctl's
// --interactive) it prompts for each section, as etcdctl does, and reads from a terminal too.
import { UsageError } from "../errors.js";
import type { KeyValue, TxnOpResult } from "../store/client.js";
import type { ClientOptions } from "./options.js";
import { headerJson, keyValueJson, printBytesLine, printLine, readStdinAtMost, toJson, withStore } from "./output.js";
import { type ParsedOp, parseTxn } from "./txn-parse.js";

/** etcd's request limit: a transaction larger than this could never be sent. */
const STDIN_MAX_BYTES = 1.5 * 1024 * 1024;
const TOO_LARGE = `txn: the input is larger than ${STDIN_MAX_BYTES} bytes`;

/** etcdctl's prompts, one before each section, in interactive mode. */
const PROMPTS = ["compares:", "success requests (get, put, del):", "failure requests (get, put, del):"] as const;

export async function runTxn(options: ClientOptions & { interactive: boolean }): Promise<number> {
  const parsed = parseTxn(options.interactive ? await readInteractively() : await readStdin());
  const result = await withStore(options, (client) =>
    client.txn({
      compare: parsed.compare,
      success: parsed.success.map((p) => p.op),
      failure: parsed.failure.map((p) => p.op),
    }),
  );
  const ran = result.succeeded ? parsed.success : parsed.failure;
  if (options.writeOut === "json") {
    const out: Record<string, unknown> = { header: headerJson(result.header) };
    if (result.succeeded) out.succeeded = true;
    if (result.responses.length > 0) out.responses = result.responses.map(responseJson);
    printLine(toJson(out));
    return 0;
  }
  printLine(result.succeeded ? "SUCCESS" : "FAILURE");
  result.responses.forEach((response, index) => {
    printLine("");
    printResponse(response, ran[index]!);
  });
  return 0;
}

async function readStdin(): Promise<Buffer> {
  if (process.stdin.isTTY) {
    throw new UsageError("txn reads its compares and requests on standard input (see vigie txn --help)");
  }
  return await readStdinAtMost(STDIN_MAX_BYTES, TOO_LARGE);
}

/**
 * Reads line by line, prompting for each section as it begins, and stops at the empty line that ends the third: at
 * a terminal there is no end of input to wait for. Input that ends earlier is left for parseTxn to refuse.
 */
async function readInteractively(): Promise<Buffer> {
  printLine(PROMPTS[0]);
  const lines: Buffer[] = [];
  let sizeBytes = 0;
  let section = 0;
  let pending = Buffer.alloc(0);
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    sizeBytes += chunk.length;
    if (sizeBytes > STDIN_MAX_BYTES) throw new UsageError(TOO_LARGE);
    pending = Buffer.concat([pending, chunk]);
    for (let newline = pending.indexOf(0x0a); newline >= 0; newline = pending.indexOf(0x0a)) {
      const line = pending.subarray(0, newline + 1);
      pending = pending.subarray(newline + 1);
      lines.push(line);
      if (line.toString("latin1").trim() !== "") continue;
      section++;
      if (section === PROMPTS.length) return Buffer.concat(lines);
      printLine(PROMPTS[section]!);
    }
  }
  return Buffer.concat([...lines, pending]);
}

/** As etcdctl's txn prints a key-value: the key, then the value, or an empty line with --keys-only. */
function printKv(kv: KeyValue, keysOnly: boolean): void {
  printBytesLine(kv.key);
  printBytesLine(keysOnly ? Buffer.alloc(0) : kv.value);
}

function printResponse(response: TxnOpResult, parsed: ParsedOp): void {
  switch (response.kind) {
    case "put":
      printLine("OK");
      if (response.result.prevKv !== undefined) printKv(response.result.prevKv, false);
      return;
    case "range":
      for (const kv of response.result.kvs) printKv(kv, parsed.keysOnly);
      return;
    case "delete":
      printLine(String(response.result.deleted));
      for (const kv of response.result.prevKvs) printKv(kv, false);
      return;
  }
}

/** etcdctl's JSON of one answer: the Go oneof wrapper, an inner header with the revision alone. */
function responseJson(response: TxnOpResult): Record<string, unknown> {
  const header = { revision: response.result.header.revision };
  switch (response.kind) {
    case "put": {
      const inner: Record<string, unknown> = { header };
      if (response.result.prevKv !== undefined) inner.prev_kv = keyValueJson(response.result.prevKv);
      return { Response: { ResponsePut: inner } };
    }
    case "range": {
      const inner: Record<string, unknown> = { header };
      if (response.result.kvs.length > 0) inner.kvs = response.result.kvs.map(keyValueJson);
      if (response.result.more) inner.more = true;
      if (response.result.count !== 0) inner.count = response.result.count;
      return { Response: { ResponseRange: inner } };
    }
    case "delete": {
      const inner: Record<string, unknown> = { header };
      if (response.result.deleted !== 0) inner.deleted = response.result.deleted;
      if (response.result.prevKvs.length > 0) inner.prev_kvs = response.result.prevKvs.map(keyValueJson);
      return { Response: { ResponseDeleteRange: inner } };
    }
  }
}
