// The etcd-compatibility suite against a real `vigie agent --dev` process (the same suite passes against etcd 3.4
// in api-etcd.test.ts). Skips with a printed reason only while the agent says it is "not available yet".
import { defineApiSuite } from "../helpers/api-suite.js";
import { startDevAgent } from "../helpers/vigie-agent.js";

defineApiSuite("vigie agent --dev JSON gateway", () => startDevAgent());
