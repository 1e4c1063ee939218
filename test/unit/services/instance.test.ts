// The stored layout of a service instance: default ids, the value written, and parsing what others wrote.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { serviceSchema } from "../../../src/config/schema.js";
import {
  defaultInstanceId,
  instanceId,
  instanceKey,
  instanceValue,
  parseInstance,
} from "../../../src/services/instance.js";

test("the default id is <name>-<host>-<port>, deterministic and safe as a key segment", () => {
  assert.is(defaultInstanceId("web", "127.0.0.1:8081"), "web-127.0.0.1-8081");
  assert.is(defaultInstanceId("web", "[::1]:80"), "web-__1-80");
  assert.is(defaultInstanceId("db", "db.internal:5432"), "db-db.internal-5432");
  assert.is(instanceId(serviceSchema.parse({ name: "web", id: "web-7", address: "127.0.0.1:1" })), "web-7");
  assert.is(instanceKey("web", "web-7"), "/services/web/web-7");
});

test("the value written round-trips through parseInstance", () => {
  const config = serviceSchema.parse({ name: "web", address: "[::1]:8080", tags: ["a"], meta: { v: "2" } });
  const value = instanceValue(config, "critical");
  assert.equal(value, {
    address: "[::1]:8080",
    host: "::1",
    port: 8080,
    tags: ["a"],
    meta: { v: "2" },
    health: "critical",
  });
  assert.equal(parseInstance("/services/web/w1", JSON.stringify(value)), { name: "web", id: "w1", ...value });
});

test("malformed entries are refused with the key named", () => {
  assert.throws(() => parseInstance("/services/web", "{}"), /\/services\/web: not a service instance/);
  assert.throws(() => parseInstance("/services/web/w1", "not json"), /value is not JSON/);
  assert.throws(() => parseInstance("/services/web/w1", '{"address":"x"}'), /"x" is not host:port/);
  assert.throws(
    () => parseInstance("/services/web/w1", '{"address":"127.0.0.1:1","health":"maybe"}'),
    /health is "maybe"/,
  );
});

test("tags and meta of the wrong type are dropped, not trusted", () => {
  const parsed = parseInstance(
    "/services/web/w1",
    JSON.stringify({ address: "127.0.0.1:1", health: "passing", tags: ["ok", 3], meta: { a: "b", c: 1 } }),
  );
  assert.equal([parsed.tags, parsed.meta], [["ok"], { a: "b" }]);
});

test.run();
