// The CLI client commands against a real `vigie agent --dev` process (the same suite runs against etcd 3.4).
import { defineCliSuite } from "../helpers/cli-suite.js";
import { startDevAgent } from "../helpers/vigie-agent.js";

defineCliSuite("vigie CLI against vigie agent --dev", () => startDevAgent());
