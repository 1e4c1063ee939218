// The example configs in examples/ (other than the quickstart) stay valid as the schema evolves.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadConfig } from "../../../src/config/load.js";
import { instanceId } from "../../../src/services/instance.js";

const EXAMPLES = ["scale-out/web-agent.yaml", "scale-out/lb-agent.yaml", "db-failover/app-agent.yaml"];

test("every scenario example config loads and says what it is for", async () => {
  for (const example of EXAMPLES) {
    const { config } = await loadConfig(join("examples", example));
    assert.ok(config.templates.length + config.services.length > 0, `${example} configures something`);
  }
  const listed = [
    ...(await readdir("examples/scale-out")).map((f) => `scale-out/${f}`),
    ...(await readdir("examples/db-failover")).map((f) => `db-failover/${f}`),
  ];
  assert.equal(listed.sort(), [...EXAMPLES].sort(), "every example file is covered here");
});

test("the web agent example's instance gets the documented default id", async () => {
  const { config } = await loadConfig("examples/scale-out/web-agent.yaml");
  assert.is(instanceId(config.services[0]!), "web-127.0.0.1-8081");
  assert.is(config.services[0]!.check?.unhealthy_threshold, 2);
});

test.run();
