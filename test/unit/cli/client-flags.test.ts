// The client commands' flag parsers and JSON shapes, checked in-process (no store needed). Each rule here was a
// deviation from etcdctl 3.4 found by running both side by side: a bad value must be refused naming the flag, and
// `-w json` must print what etcdctl prints.
import { InvalidArgumentError } from "commander";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseDuration, parseEndpoints, parseWholeNumber } from "../../../src/commands/options.js";
import { headerJson, hexToId, idToHex, leaseJson, toJson } from "../../../src/commands/output.js";

function refusal(parse: () => unknown): string {
  try {
    parse();
  } catch (error) {
    assert.instance(error, InvalidArgumentError);
    return (error as Error).message;
  }
  throw new Error("expected a refusal");
}

test("--command-timeout takes Go durations like etcdctl (1m, 1m30s, 1.5s, 500ms) and refuses 0 and junk", () => {
  const timeout = parseDuration("--command-timeout");
  assert.is(timeout("5s"), 5_000);
  assert.is(timeout("1m"), 60_000);
  assert.is(timeout("1m30s"), 90_000);
  assert.is(timeout("1.5s"), 1_500);
  assert.is(timeout("250ms"), 250);
  assert.is(timeout("1h"), 3_600_000);
  assert.is(
    refusal(() => timeout("0s")),
    `--command-timeout expects a duration above 0 like 5s, got "0s"`,
  );
  assert.is(
    refusal(() => timeout("5")),
    `--command-timeout expects a duration like 5s, 1m or 500ms, got "5"`,
  );
  assert.is(
    refusal(() => timeout("soon")),
    `--command-timeout expects a duration like 5s, 1m or 500ms, got "soon"`,
  );
});

test("--rev and --limit: whole numbers of 0 or more that a JS number holds exactly", () => {
  const rev = parseWholeNumber("--rev", 0);
  assert.is(rev("0"), 0);
  assert.is(rev("42"), 42);
  assert.is(
    refusal(() => rev("abc")),
    `--rev expects a whole number, got "abc"`,
  );
  assert.is(
    refusal(() => rev("-1")),
    `--rev expects a whole number of at least 0, got "-1"`,
  );
  assert.is(
    refusal(() => rev("99999999999999999999")),
    `--rev expects a whole number of at most 9007199254740991, got "99999999999999999999"`,
  );
  assert.is(parseWholeNumber("--voters")("-3"), -3, "no minimum unless asked (the agent checks --voters itself)");
});

test("--endpoints: URLs, or host:port as etcdctl takes them (http:// assumed)", () => {
  assert.equal(parseEndpoints("http://127.0.0.1:2379, https://a:1/"), ["http://127.0.0.1:2379", "https://a:1/"]);
  assert.equal(parseEndpoints("127.0.0.1:2379,localhost:22379,[::1]:2379"), [
    "http://127.0.0.1:2379",
    "http://localhost:22379",
    "http://[::1]:2379",
  ]);
  assert.is(
    refusal(() => parseEndpoints("not a url")),
    `"not a url" is not an endpoint URL like http://127.0.0.1:2379`,
  );
  assert.is(
    refusal(() => parseEndpoints("localhost")),
    `"localhost" is not an endpoint URL like http://127.0.0.1:2379`,
  );
  assert.is(
    refusal(() => parseEndpoints(" , ")),
    "needs at least one URL",
  );
});

test("lease IDs are signed like etcd's: 8000000000000000 and above are refused, member IDs are not", () => {
  assert.is(hexToId("694d5765fc71500b", "--lease", "lease"), "7587817042727751691");
  assert.throws(() => hexToId("ffffffffffffffff", "--lease", "lease"), /--lease expects a hexadecimal ID/);
  assert.is(hexToId("0x1f", "--lease", "lease"), "31");
  assert.throws(() => hexToId("1g", "--lease", "lease"), /--lease expects a hexadecimal ID/);
  assert.is(hexToId("ffffffffffffffff", "member remove", "member"), "18446744073709551615", "uint64, as etcd takes it");
  assert.is(idToHex(hexToId("ffffffffffffffff", "member remove", "member")), "ffffffffffffffff");
});

test("JSON headers omit zero fields like etcd's (member list has no revision); int64 IDs stay exact", () => {
  const header = { clusterId: "18446744073709551615", memberId: "9007199254740993", revision: 0, raftTerm: 2 };
  assert.is(
    toJson(headerJson(header)),
    `{"cluster_id":18446744073709551615,"member_id":9007199254740993,"raft_term":2}`,
  );
});

test("lease grant / keep-alive JSON is etcdctl's: the header's fields at the top level, then ID and TTL", () => {
  const header = { clusterId: "1", memberId: "2", revision: 7, raftTerm: 3 };
  assert.is(
    toJson(leaseJson(header, "7587817042727751691", 60)),
    `{"cluster_id":1,"member_id":2,"revision":7,"raft_term":3,"ID":7587817042727751691,"TTL":60}`,
  );
});

test.run();
