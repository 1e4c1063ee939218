// A leader agent stopped with SIGTERM under a write load: it hands leadership to another voter before it goes (the
// voter it names leads next, and it logs no failed or unfinished handover), exits 0, and no acknowledged write is
// lost. The time until the survivors serve a write is printed, not asserted.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { api, leaderOf, memberIdOf, note, put, WriteLoad, withFounders } from "./membership-kit.js";

/** The JSON log lines of `output` whose message is `msg`. */
function logLines(output: string, msg: string): Array<Record<string, unknown>> {
  return output
    .split("\n")
    .filter((line) => line.includes(`"msg":${JSON.stringify(msg)}`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

test("a leader stopped with SIGTERM hands leadership over, exits 0, and loses no acknowledged write", async () => {
  await withFounders("leader-stop", ["t1", "t2", "t3"], { voters: 3 }, async ({ founders, leader }) => {
    const others = founders.filter((a) => a !== leader);
    const load = new WriteLoad(others.map((a) => a.clientUrl));
    await new Promise((r) => setTimeout(r, 300));
    const stoppedAtMs = Date.now();
    await leader.kill("SIGTERM");
    assert.is(await leader.exitCode(), 0, leader.logs());
    const servedAfterMs = await (async () => {
      for (;;) {
        const answer = await put(others[0]!.clientUrl, "/after-stop", "ok", 8000).catch(() => undefined);
        if (answer?.status === 200) return Date.now() - stoppedAtMs;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await load.stop();

    const handovers = logLines(leader.logs(), "shutting down: handing leadership over");
    assert.is(handovers.length, 1, leader.logs());
    for (const warning of [
      "handing leadership over failed",
      "handing leadership over did not finish",
      "shutting down as leader with no other voter up: the cluster elects one after a timeout",
    ]) {
      assert.equal(logLines(leader.logs(), warning), [], leader.logs());
    }
    const next = await leaderOf(others);
    const nextIdHex = BigInt(await memberIdOf(next)).toString(16);
    assert.is(handovers[0]!.to, nextIdHex, "the voter handed leadership to is the one that leads");

    assert.equal(await load.lost(next.clientUrl), [], "acknowledged writes lost");
    assert.ok(load.acknowledged.length > 0, "the load made progress");
    const status = await api(next.clientUrl, "/v3/maintenance/status");
    note(
      `leader stopped with SIGTERM: a write served ${servedAfterMs} ms after the signal (term ${status.body.raftTerm}); ` +
        `${load.acknowledged.length} writes kept`,
    );
  });
});

test.run();
