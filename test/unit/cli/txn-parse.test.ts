// The text `vigie txn` reads: etcdctl 3.4's format (compares, requests if they hold, requests otherwise, each
// section ended by an empty line), Go-quoted keys and values with raw bytes, and errors that name the line.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseTxn as parseBytes } from "../../../src/commands/txn-parse.js";
import { UsageError } from "../../../src/errors.js";

const b = (text: string) => Buffer.from(text);
/** The parser reads bytes, as `vigie txn` reads standard input. */
const parseTxn = (text: string) => parseBytes(Buffer.from(text, "utf8"));

test("the three sections, every compare target and alias, every operator", () => {
  const parsed = parseTxn(
    [
      'value("/db/master") = "10.0.0.1"',
      'val("/a") != "x"',
      'version("/a") > "2"',
      'ver("/a") < "9"',
      'create("/a") = "0"',
      'c("/a") > "1"',
      'mod("/a") < "100"',
      'm("/a") == "7"',
      'lease("/a") = "7587863090903344655"',
      "",
      "put /db/master 10.0.0.2",
      "get /db/master",
      "",
      "get /db/master",
      "",
      "",
    ].join("\n"),
  );
  assert.equal(parsed.compare, [
    { key: b("/db/master"), result: "EQUAL", target: "VALUE", value: b("10.0.0.1") },
    { key: b("/a"), result: "NOT_EQUAL", target: "VALUE", value: b("x") },
    { key: b("/a"), result: "GREATER", target: "VERSION", version: 2 },
    { key: b("/a"), result: "LESS", target: "VERSION", version: 9 },
    { key: b("/a"), result: "EQUAL", target: "CREATE", createRevision: 0 },
    { key: b("/a"), result: "GREATER", target: "CREATE", createRevision: 1 },
    { key: b("/a"), result: "LESS", target: "MOD", modRevision: 100 },
    { key: b("/a"), result: "EQUAL", target: "MOD", modRevision: 7 },
    { key: b("/a"), result: "EQUAL", target: "LEASE", lease: "7587863090903344655" },
  ]);
  assert.equal(
    parsed.success.map((p) => p.op),
    [
      { put: b("/db/master"), value: b("10.0.0.2"), prevKv: false },
      { range: b("/db/master"), keysOnly: false },
    ],
  );
  assert.equal(
    parsed.failure.map((p) => p.op),
    [{ range: b("/db/master"), keysOnly: false }],
  );
});

test("empty sections are allowed; an input that ends inside a section sends nothing, as etcdctl refuses it", () => {
  const parsed = parseTxn("\nput /k v\n\n\n");
  assert.equal(parsed.compare, []);
  assert.equal(
    parsed.success.map((p) => p.op),
    [{ put: b("/k"), value: b("v"), prevKv: false }],
  );
  assert.equal(parsed.failure, []);
  assert.equal(parseTxn("\n\n\n"), { compare: [], success: [], failure: [] });
  for (const [input, where] of [
    ["", "compares"],
    ['value("/a") = "1"\n', "compares"],
    ['value("/a") = "1"\n\nput /a 2\n', "success requests"],
    ['value("/a") = "1"\n\nput /a 2\n\nget /a\n', "failure requests"],
  ]) {
    assert.throws(() => parseTxn(input!), new RegExp(`the input ends inside its ${where} .*nothing was sent`));
  }
});

test("Go-quoted keys and values: spaces, quotes, escapes, and bytes that are not UTF-8", () => {
  const parsed = parseTxn(
    ['value("/a b\\"c") = "x\\ty\\n\\\\"', "", 'put "/bin\\xff\\000" "\\u00e9\\U0001F600 \\101"', "", "", ""].join(
      "\n",
    ),
  );
  assert.equal(parsed.compare[0], {
    key: b('/a b"c'),
    result: "EQUAL",
    target: "VALUE",
    value: b("x\ty\n\\"),
  });
  assert.equal(parsed.success[0]!.op, {
    put: Buffer.from([0x2f, 0x62, 0x69, 0x6e, 0xff, 0x00]),
    value: b("é😀 A"),
    prevKv: false,
  });
});

test("request flags: ranges, prefixes, from-key, limits, revisions, leases, prev-kv", () => {
  const parsed = parseTxn(
    [
      "",
      "get /a /c --limit 5 --rev=3",
      "get /p --prefix --keys-only",
      "get /f --from-key",
      "del /p --prefix --prev-kv",
      "del /a /b",
      "put /l v --lease=1f --prev-kv",
      "put /m v --lease 2a",
      "",
      "",
      "",
    ].join("\n"),
  );
  assert.equal(
    parsed.success.map((p) => [p.op, p.keysOnly]),
    [
      [{ range: b("/a"), rangeEnd: b("/c"), keysOnly: false, limit: 5, revision: 3 }, false],
      [{ range: b("/p"), prefix: true, keysOnly: true }, true],
      [{ range: b("/f"), rangeEnd: Buffer.from([0]), keysOnly: false }, false],
      [{ deleteRange: b("/p"), prefix: true, prevKv: true }, false],
      [{ deleteRange: b("/a"), rangeEnd: b("/b"), prevKv: false }, false],
      [{ put: b("/l"), value: b("v"), prevKv: true, lease: "31" }, false],
      [{ put: b("/m"), value: b("v"), prevKv: false, lease: "42" }, false],
    ],
  );
});

test("every mistake names its line (etcdctl panics or prints a usage page)", () => {
  const cases: Array<[string, string]> = [
    ['valu("/x") = "1"', 'line 1: not a comparison like value("KEY") = "VALUE"'],
    ['value(/x) = "1"', "line 1: expected a double-quoted string"],
    ['value("/x" = "1"', 'line 1: expected ")" after the key'],
    ['value("/x") ~ "1"', 'line 1: expected "=", "!=", "<" or ">"'],
    ['value("/x") = "1" extra', "line 1: text after the compared value"],
    ['version("/x") = "two"', 'line 1: version compares with a whole number, got "two"'],
    ['value("/x) = "1"', 'line 1: expected ")" after the key'],
    ['value("/x\\q") = "1"', "line 1: unknown escape \\q in a quoted string"],
    ['value("/x") = "1', "line 1: a quoted string is not closed"],
    ["\nput /a", "line 2: put takes KEY VALUE"],
    ["\nset /a b", "line 2: a request is put, get or del"],
    ["\nget /a --prefix --from-key", "line 2: give one of RANGE_END, --prefix and --from-key"],
    ["\nget /a --limit x", "line 2: --limit expects a whole number"],
    ["\nput /a b --prefix", "line 2: put takes --lease, --prev-kv, not --prefix"],
    ["\nput /a b --lease=zz", "line 2: --lease expects a hexadecimal ID"],
    ["\nget /a --prefix=maybe", "line 2: --prefix is a switch: give it alone, or =true or =false"],
    ["\nget /a --order=UP", "line 2: --order is one of ASCEND, DESCEND"],
    ["\nget\n", "line 2: get needs a key"],
    ["\n\n\n\nget /a", "line 5: text after the failure requests"],
  ];
  for (const [input, message] of cases) {
    try {
      // Complete sections after the line under test, so that the line is what fails.
      parseTxn(`${input}\n\n\n\n`);
      assert.unreachable(`${JSON.stringify(input)} was accepted`);
    } catch (error) {
      assert.instance(error, UsageError, JSON.stringify(input));
      assert.match((error as Error).message, message, JSON.stringify(input));
    }
  }
  const tooMany = `\n${Array.from({ length: 129 }, (_, i) => `put /k${i} v`).join("\n")}\n\n\n`;
  assert.throws(() => parseTxn(tooMany), /129 success requests, at most 128 in one transaction/);
});

test("etcdctl's other spellings: --flag=true/false, an empty key with --from-key, backquotes, negative numbers", () => {
  const parsed = parseTxn(
    [
      "ver(`/a`) = `-1`",
      "",
      "get /p --prefix=true --keys-only=false",
      "del /q --prefix=false --prev-kv=true",
      'get "" --from-key --order=descend --sort-by=modify',
      "get /s --sort-by=VALUE --print-value-only --consistency=s",
      "",
      "",
      "",
    ].join("\n"),
  );
  assert.equal(parsed.compare, [{ key: b("/a"), result: "EQUAL", target: "VERSION", version: -1 }]);
  assert.equal(
    parsed.success.map((p) => [p.op, p.keysOnly]),
    [
      [{ range: b("/p"), prefix: true, keysOnly: false }, false],
      [{ deleteRange: b("/q"), prevKv: true }, false],
      [
        {
          range: Buffer.from([0]),
          rangeEnd: Buffer.from([0]),
          keysOnly: false,
          sortOrder: "DESCEND",
          sortTarget: "MOD",
        },
        false,
      ],
      [{ range: b("/s"), keysOnly: false, sortOrder: "ASCEND", sortTarget: "VALUE" }, false],
    ],
  );
});

test("raw bytes typed in the input keep their exact bytes (not replaced as invalid UTF-8)", () => {
  const input = Buffer.concat([
    Buffer.from('val("k") = "'),
    Buffer.from([0xff, 0xfe]),
    Buffer.from('"\n\nput rawkey '),
    Buffer.from([0xff, 0x80]),
    Buffer.from("\n\n\n"),
  ]);
  const parsed = parseBytes(input);
  assert.equal(parsed.compare[0], { key: b("k"), result: "EQUAL", target: "VALUE", value: Buffer.from([0xff, 0xfe]) });
  assert.equal(parsed.success[0]!.op, { put: b("rawkey"), value: Buffer.from([0xff, 0x80]), prevKv: false });
});

test.run();
