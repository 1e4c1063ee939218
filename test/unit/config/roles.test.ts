// The agent's role settings checked against each other before anything starts: conflicting bootstrap flags (etcd
// refuses them too), URLs a server cannot listen on, and an --initial-cluster that does not describe this member.
// Each message names the flag, or the file line that set the value, as users see it.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type ConfigOverrides, loadConfig } from "../../../src/config/load.js";
import { listenUrlProblem } from "../../../src/config/roles.js";
import { ConfigError } from "../../../src/errors.js";

async function flagError(overrides: ConfigOverrides): Promise<string> {
  try {
    await loadConfig(undefined, overrides, AGENT);
  } catch (error) {
    assert.instance(error, ConfigError);
    return (error as Error).message;
  }
  throw new Error(`${JSON.stringify(overrides)} loaded without error`);
}

async function withFile<T>(lines: string[], use: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "vigie-roles-"));
  try {
    const file = join(dir, "vigie.yaml");
    await writeFile(file, `${lines.join("\n")}\n`);
    return await use(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** How `vigie agent` loads its config: with the role checks. */
const AGENT = { agentRole: true };
const PEER_A = "http://127.0.0.1:2380";
const PEER_B = "http://127.0.0.1:2381";

test("--dev excludes every other way to find a store", async () => {
  assert.is(
    await flagError({ dev: true, initial_cluster: `a=${PEER_A},b=${PEER_B}` }),
    "flag --initial-cluster: --dev and --initial-cluster exclude each other: --dev runs a single node of its own",
  );
  assert.is(
    await flagError({ dev: true, join: "http://127.0.0.1:2379" }),
    "flag --join: --dev and --join exclude each other: --dev runs a single node of its own",
  );
  assert.is(
    await flagError({ dev: true, store_endpoints: "http://127.0.0.1:2379" }),
    "flag --store-endpoints: --dev and --store-endpoints exclude each other: " +
      "--dev starts an embedded store, --store-endpoints uses a remote one",
  );
});

test("--dev has one voter: another --voters with it is refused, its default and 1 are not", async () => {
  assert.is(
    await flagError({ dev: true, voters: 5 }),
    "flag --voters: --dev and --voters exclude each other: --dev runs a single node of its own, the only voter",
  );
  await loadConfig(undefined, { dev: true }, AGENT);
  await loadConfig(undefined, { dev: true, voters: 1 }, AGENT);
});

test("a member name is checked as a name, not blamed on --initial-cluster", async () => {
  assert.is(
    await flagError({ name: "a b" }),
    `flag --name: "a b" cannot be a member name: a member name is 1 to 64 letters, digits, '.', '_' or '-', ` +
      "starting with a letter or digit",
  );
  await withFile(["name: web/1"], async (file) => {
    const message = await loadConfig(file, {}, AGENT).then(
      () => "loaded",
      (error: Error) => error.message,
    );
    assert.match(message, `${file}:1:7: name: "web/1" cannot be a member name`);
  });
  // A client keeps no replica: its name is never a member's.
  await loadConfig(undefined, { name: "web 1", store_endpoints: "http://127.0.0.1:2379" }, AGENT);
});

test("a member founds a cluster or joins one, and a client keeps no replica", async () => {
  assert.is(
    await flagError({ join: "http://127.0.0.1:2379", initial_cluster: `a=${PEER_A}`, name: "a" }),
    "flag --initial-cluster: --join and --initial-cluster exclude each other: " +
      "a new member either founds a cluster (--initial-cluster) or joins a running one (--join)",
  );
  assert.is(
    await flagError({ store_endpoints: "http://127.0.0.1:2379", join: "http://127.0.0.1:2379" }),
    "flag --join: --store-endpoints and --join exclude each other: " +
      "with --store-endpoints the agent is a client and keeps no replica",
  );
});

test("in a file, the conflict is reported at the line, with the file's names", async () => {
  await withFile(["dev: true", "initial_cluster:", `  a: ${PEER_A}`], async (file) => {
    assert.is(
      await loadConfig(file, {}, AGENT).then(
        () => "loaded",
        (error: Error) => error.message,
      ),
      `${file}:3:3: initial_cluster: dev and initial_cluster exclude each other: dev runs a single node of its own`,
    );
  });
  // A flag and a file setting: each named as the user wrote it.
  await withFile([`store_endpoints: http://127.0.0.1:2379`], async (file) => {
    const message = await loadConfig(file, { join: "http://127.0.0.1:2379" }, AGENT).then(
      () => "loaded",
      (error: Error) => error.message,
    );
    assert.is(
      message,
      "flag --join: store_endpoints and --join exclude each other: " +
        "with store_endpoints the agent is a client and keeps no replica",
    );
  });
});

test("a URL to listen on: plain http, a port, no path", () => {
  assert.is(listenUrlProblem("http://127.0.0.1:2379"), undefined);
  assert.is(listenUrlProblem("http://127.0.0.1:2379/"), undefined);
  assert.is(listenUrlProblem("http://[::1]:0"), undefined);
  assert.is(listenUrlProblem("http://127.0.0.1:80"), undefined);
  assert.is(
    listenUrlProblem("https://127.0.0.1:2379"),
    "https://127.0.0.1:2379: vigie serves plain http only (no TLS): use http://, or put a TLS proxy in front",
  );
  assert.is(
    listenUrlProblem("http://127.0.0.1:2379/v3"),
    "http://127.0.0.1:2379/v3: a URL to listen on must not have a path, like http://127.0.0.1:2379",
  );
  assert.is(listenUrlProblem("http://127.0.0.1"), "http://127.0.0.1: needs a port, like http://127.0.0.1:2379");
});

test("listen URLs are checked where they are set; a client-role agent's unused peer URL is not", async () => {
  assert.is(
    await flagError({ listen_client: "https://127.0.0.1:2379", listen_peer: "http://127.0.0.1:2380/raft" }),
    "flag --listen-client: https://127.0.0.1:2379: vigie serves plain http only (no TLS): use http://, or put a TLS proxy in front\n" +
      "flag --listen-peer: http://127.0.0.1:2380/raft: a URL to listen on must not have a path, like http://127.0.0.1:2380",
  );
  const client = await loadConfig(
    undefined,
    {
      store_endpoints: "https://etcd.example:2379",
      listen_peer: "https://127.0.0.1:2380",
    },
    AGENT,
  );
  assert.equal(client.config.store_endpoints, ["https://etcd.example:2379"], "remote stores may use https");
});

test("the client API and the peers need a port each, the default one included", async () => {
  assert.is(
    await flagError({ listen_client: "http://127.0.0.1:2381", listen_peer: "http://127.0.0.1:2381" }),
    "flag --listen-peer: the same address as --listen-client: the client API and the peers each need their own port",
  );
  assert.is(
    await flagError({ listen_peer: "http://127.0.0.1:2379" }),
    "flag --listen-peer: the same address as --listen-client (its default): " +
      "the client API and the peers each need their own port",
  );
  assert.is(
    await flagError({ listen_client: "http://127.0.0.1:2380" }),
    "flag --listen-client: the same address as --listen-peer (its default): " +
      "the client API and the peers each need their own port",
  );
  // Port 0 is "any free port": two of them never clash.
  await loadConfig(undefined, { listen_client: "http://127.0.0.1:0", listen_peer: "http://127.0.0.1:0" }, AGENT);
});

test("--initial-cluster must describe this member as it listens, before the data dir is touched", async () => {
  assert.is(
    await flagError({ initial_cluster: `a=${PEER_A},b=${PEER_B}` }),
    `flag --initial-cluster: does not list this member: its name is the host name "${hostname()}" ` +
      "(no --name given); listed: a, b",
  );
  assert.is(
    await flagError({ initial_cluster: `a=${PEER_A},b=${PEER_B}`, name: "b" }),
    `flag --initial-cluster: gives "b" the peer URL ${PEER_B}, but --listen-peer is ${PEER_A}`,
  );
  assert.is(
    await flagError({ initial_cluster: `a=${PEER_A},b`, name: "a" }),
    'flag --initial-cluster: "b" is not name=peerURL',
  );
  await withFile(["name: c", "initial_cluster:", `  a: ${PEER_A}`, `  a2: ${PEER_B}`], async (file) => {
    const message = await loadConfig(file, {}, AGENT).then(
      () => "loaded",
      (error: Error) => error.message,
    );
    assert.is(message, `${file}:3:3: initial_cluster: does not list this member: its name is "c"; listed: a, a2`);
  });
  const good = await loadConfig(
    undefined,
    { initial_cluster: `a=${PEER_A},b=${PEER_B}`, name: "b", listen_peer: PEER_B },
    AGENT,
  );
  assert.is(good.config.initial_cluster, `a=${PEER_A},b=${PEER_B}`);
});

test("readers of the file alone (vigie render, the sidecar on a change) do not check roles the flags complete", async () => {
  await withFile(["initial_cluster:", `  a: ${PEER_A}`, "listen_peer: http://127.0.0.1:2380"], async (file) => {
    const loaded = await loadConfig(file);
    assert.equal(loaded.config.initial_cluster, { a: PEER_A });
    const asAgent = await loadConfig(file, { name: "a" }, AGENT);
    assert.equal(asAgent.config.name, "a");
  });
});

test("--advertise-peer is the URL --initial-cluster must give this member; --listen-peer then only binds", async () => {
  const proxied = "http://10.0.0.5:12380";
  const cluster = `a=${proxied},b=${PEER_B}`;
  const good = await loadConfig(
    undefined,
    { initial_cluster: cluster, name: "a", listen_peer: "http://0.0.0.0:2380", advertise_peer: proxied },
    AGENT,
  );
  assert.is(good.config.advertise_peer, proxied);
  assert.is(
    await flagError({
      initial_cluster: cluster,
      name: "a",
      listen_peer: PEER_A,
      advertise_peer: "http://10.0.0.5:2380",
    }),
    `flag --initial-cluster: gives "a" the peer URL ${proxied}, but --advertise-peer is http://10.0.0.5:2380`,
  );
  // Without --advertise-peer the listen URL is the advertised one, as before.
  assert.is(
    await flagError({ initial_cluster: cluster, name: "a", listen_peer: PEER_A }),
    `flag --initial-cluster: gives "a" the peer URL ${proxied}, but --listen-peer is ${PEER_A}`,
  );
});

test("a peer URL on every interface needs --advertise-peer once there are other members", async () => {
  const everywhere = "http://0.0.0.0:2380";
  const fix = "give it with --advertise-peer (like http://10.0.0.5:2380)";
  assert.is(
    await flagError({ join: "http://10.0.0.1:2379", name: "c", listen_peer: everywhere }),
    `flag --listen-peer: ${everywhere} listens on every interface, but the other members need an address that ` +
      `reaches this one: ${fix}`,
  );
  assert.match(
    await flagError({ initial_cluster: `a=${everywhere},b=${PEER_B}`, name: "a", listen_peer: "http://[::]:2380" }),
    "flag --listen-peer: http://[::]:2380 listens on every interface",
  );
  // Alone (a single-member cluster, --dev), nobody else needs to reach it: accepted as before.
  await loadConfig(undefined, { listen_peer: everywhere, name: "a" }, AGENT);
  await loadConfig(undefined, { dev: true, listen_peer: everywhere }, AGENT);
});

test("an advertised URL must be one others can connect to", async () => {
  assert.is(
    await flagError({ dev: true, advertise_client: "http://0.0.0.0:2379" }),
    "flag --advertise-client: http://0.0.0.0:2379: 0.0.0.0 means every interface, which no one can connect to: " +
      "advertise this host's address",
  );
  assert.is(
    await flagError({ dev: true, advertise_peer: "https://10.0.0.5:2380" }),
    "flag --advertise-peer: https://10.0.0.5:2380: vigie's members talk plain http to each other: use http://",
  );
  assert.is(
    await flagError({ dev: true, advertise_peer: "http://10.0.0.5:0" }),
    "flag --advertise-peer: http://10.0.0.5:0: port 0 is not a port anyone can connect to",
  );
  assert.is(
    await flagError({ dev: true, advertise_client: "http://vigie.example/api" }),
    "flag --advertise-client: http://vigie.example/api: an advertised URL must not have a path, like " +
      "http://vigie.example",
  );
  // A client URL behind a TLS proxy, on its default port, with a host name: all fine to advertise.
  const loaded = await loadConfig(undefined, { dev: true, advertise_client: "https://vigie.example" }, AGENT);
  assert.is(loaded.config.advertise_client, "https://vigie.example");
  await withFile(["dev: true", "advertise_client: http://0.0.0.0:2379"], async (file) => {
    const message = await loadConfig(file, {}, AGENT).then(
      () => "loaded",
      (error: Error) => error.message,
    );
    assert.match(message, `${file}:2:19: advertise_client: http://0.0.0.0:2379: 0.0.0.0 means every interface`);
  });
});

test("a client-role agent advertises nothing: --advertise-* with --store-endpoints are refused", async () => {
  assert.is(
    await flagError({ store_endpoints: "http://10.0.0.1:2379", advertise_peer: "http://10.0.0.5:2380" }),
    "flag --advertise-peer: --store-endpoints and --advertise-peer exclude each other: with --store-endpoints the " +
      "agent is a client and has no peers",
  );
  assert.is(
    await flagError({ store_endpoints: "http://10.0.0.1:2379", advertise_client: "http://10.0.0.5:2379" }),
    "flag --advertise-client: --store-endpoints and --advertise-client exclude each other: with --store-endpoints " +
      "the agent is a client: it is no member and advertises no URL",
  );
});

test.run();
