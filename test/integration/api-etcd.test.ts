// The compatibility suite against a real etcd 3.4: proves the suite's expectations are etcd's behaviour.
import { defineApiSuite } from "../helpers/api-suite.js";
import { startEtcd } from "../helpers/etcd.js";
import { requireTools } from "../helpers/require-tool.js";

defineApiSuite("etcd 3.4 JSON gateway", async () => {
  if (requireTools("api-etcd", "etcd") === undefined) return undefined;
  const etcd = await startEtcd({ name: "api-compat" });
  return { url: etcd.clientUrl, stop: () => etcd.stop() };
});
