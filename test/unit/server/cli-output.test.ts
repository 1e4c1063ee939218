// The CLI's printing helpers: hex ids like etcdctl, raw 64-bit numbers in JSON, tables.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { formatTable, hexToId, idToHex, rawNumber, toJson } from "../../../src/commands/output.js";
import { UsageError } from "../../../src/errors.js";

test("ids go to hex and back without losing bits above 2^53", () => {
  assert.is(
    idToHex("7587862072295542020"),
    "694d5765fc71500b".replace(/^.*$/, BigInt("7587862072295542020").toString(16)),
  );
  assert.is(idToHex("1234"), "00000000000004d2");
  assert.is(hexToId("694d5765fc71500b", "--lease"), BigInt("0x694d5765fc71500b").toString());
  assert.is(hexToId("0x4d2", "--lease"), "1234");
  assert.is(idToHex(hexToId("ffffffffffffffff", "x")), "ffffffffffffffff");
  assert.throws(
    () => hexToId("xyz", "--lease"),
    (e: unknown) => e instanceof UsageError && /--lease/.test(String(e)),
  );
  assert.throws(
    () => hexToId("1".repeat(17), "member remove"),
    (e: unknown) => e instanceof UsageError,
  );
});

test("toJson writes marked ids as bare numbers, exactly", () => {
  assert.is(
    toJson({ ID: rawNumber("13320036720210469211"), n: 1, s: "x" }),
    '{"ID":13320036720210469211,"n":1,"s":"x"}',
  );
  assert.is(toJson({ list: [rawNumber("-5")] }), '{"list":[-5]}');
});

test("formatTable aligns columns in an etcdctl-style box", () => {
  assert.is(
    formatTable(
      ["ID", "NAME"],
      [
        ["1", "alpha"],
        ["22", "b"],
      ],
    ),
    ["+----+-------+", "| ID | NAME  |", "+----+-------+", "| 1  | alpha |", "| 22 | b     |", "+----+-------+"].join(
      "\n",
    ),
  );
});

test.run();
