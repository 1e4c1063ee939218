import { test } from "uvu";
import * as assert from "uvu/assert";
import { Cluster } from "./harness.js";

test("three nodes elect one leader and replicate a proposal", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  assert.equal(c.leaders(), [1]);
  c.propose(1, "a");
  c.tickAll(3);
  for (const id of [1, 2, 3]) assert.equal(c.appliedData(id), ["a"]);
  assert.is(c.raft(2).leader, 1);
});

test.run();
