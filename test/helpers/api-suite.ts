// THE etcd-compatibility suite: one body, run against a real etcd 3.4 (test/integration/api-etcd.test.ts) and
// against vigie (test/integration/api-vigie.test.ts). Every expectation below was first observed on etcd 3.4.23;
// the comments marked "etcd:" record behaviour that surprised us. Responses are compared FIELD BY FIELD after
// replacing the values that legitimately differ (cluster_id, member_id, raft_term: checked to be decimal strings).
// Revisions are relative to the store's revision when the suite starts, so the target need not be empty, but
// it must not be written by anyone else while the suite runs (the suite compacts it).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { call } from "./api-client.js";
import { b64 } from "./api-expect.js";
import { defineCheckOrderChecks } from "./api-suite-checks.js";
import { defineEdgeChecks } from "./api-suite-edges.js";
import { defineKvChecks } from "./api-suite-kv.js";
import { defineMoreChecks } from "./api-suite-more.js";
import { defineStreamChecks } from "./api-suite-streams.js";
import { defineWatchEdgeChecks } from "./api-suite-watch-edges.js";

export interface ApiTarget {
  url: string;
  stop(): Promise<void>;
}

export function defineApiSuite(name: string, start: () => Promise<ApiTarget | undefined>): void {
  const test = suite<{ target: ApiTarget | undefined }>(name, { target: undefined });
  let url = "";
  let base = 0;
  /** Runs the body only when the target started (the vigie file skips, loudly, while the agent is missing). */
  /** Why the target did not start: uvu 0.5 swallows a before hook's error (0 checks run, exit 0), so each check throws it. */
  let startError: unknown;
  const check = (title: string, body: (url: string) => Promise<void>) =>
    test(title, async (context) => {
      if (startError !== undefined) throw startError;
      if (context.target === undefined) return;
      await body(url);
    });

  test.before(async (context) => {
    try {
      context.target = await start();
      if (context.target === undefined) return;
      url = context.target.url;
      const answer = await call(url, "/v3/kv/range", { key: b64("/none") });
      const revision = (answer.json?.header as { revision?: string } | undefined)?.revision;
      assert.match(String(revision), /^\d+$/, `the target answers a range: ${answer.text}`);
      base = Number(revision);
    } catch (error) {
      startError = error;
    }
  });
  test.after(async (context) => {
    await context.target?.stop();
  });

  // The sections share the store and count revisions from `base`: they run in this order.
  const context = { check, rev: (offset: number) => base + offset, p: "/compat/" };
  defineKvChecks(context);
  defineStreamChecks(context);
  defineMoreChecks(context);
  defineEdgeChecks(context);
  defineWatchEdgeChecks(context);
  defineCheckOrderChecks(context); // compacts the store at its current revision: last
  test.run();
}
