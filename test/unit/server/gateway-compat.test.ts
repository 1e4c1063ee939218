// The etcd-compatibility suite against vigie's gateway in this process (a real single-node replica behind it).
// The same suite passes against etcd 3.4 (test/integration/api-etcd.test.ts).
import { defineApiSuite } from "../../helpers/api-suite.js";
import { startInProcessGateway } from "./in-process.js";

defineApiSuite("vigie gateway (in-process single node)", async () => {
  const gateway = await startInProcessGateway();
  return { url: gateway.url, stop: () => gateway.stop() };
});
