// The CLI client commands against a real etcd 3.4 (the same commands must work against vigie and etcd).
import { defineCliSuite } from "../helpers/cli-suite.js";
import { startEtcd } from "../helpers/etcd.js";
import { requireTools } from "../helpers/require-tool.js";

defineCliSuite("vigie CLI against etcd 3.4", async () => {
  if (requireTools("cli-etcd", "etcd") === undefined) return undefined;
  const etcd = await startEtcd({ name: "cli-etcd" });
  return { url: etcd.clientUrl, stop: () => etcd.stop() };
});
