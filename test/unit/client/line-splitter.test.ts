// Property: however a stream of newline-terminated lines is cut into chunks (including inside multi-byte
// characters), the splitter returns exactly the original lines, in order; a line over the limit is refused.
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StoreUnavailableError } from "../../../src/errors.js";
import { LineSplitter, WatchMessageTooLargeError } from "../../../src/store/client/watch-stream.js";

const line = fc.string({ unit: fc.constantFrom("a", "é", "€", "𝄞", "{", "}", '"', " "), maxLength: 40 });

test("any chunking yields the same lines", () => {
  fc.assert(
    fc.property(fc.array(line, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (lines, cuts) => {
      const bytes = Buffer.from(lines.map((l) => `${l}\n`).join(""), "utf8");
      const positions = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))].sort(
        (a, b) => a - b,
      );
      const splitter = new LineSplitter(1024, "test");
      const out: string[] = [];
      let previous = 0;
      for (const position of [...positions, bytes.length]) {
        out.push(...splitter.push(bytes.subarray(previous, position)));
        previous = position;
      }
      assert.equal(out, lines);
    }),
    { numRuns: 300 },
  );
});

test("a line longer than the limit is refused, whether it comes whole or in pieces", () => {
  const whole = new LineSplitter(10, "test");
  // Its own class (a StoreUnavailableError still): the sync resyncs on it instead of resuming into the same message.
  assert.throws(
    () => whole.push(Buffer.from("0123456789AB\n")),
    (e: unknown) => e instanceof WatchMessageTooLargeError && e instanceof StoreUnavailableError && e.maxBytes === 10,
  );
  const pieces = new LineSplitter(10, "test");
  pieces.push(Buffer.from("012345"));
  assert.throws(
    () => pieces.push(Buffer.from("6789AB")),
    (e: unknown) => e instanceof StoreUnavailableError,
  );
  const exact = new LineSplitter(10, "test");
  assert.equal(exact.push(Buffer.from("0123456789\nx")), ["0123456789"]);
});

test.run();
