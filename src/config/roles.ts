// Checks across the agent's settings, once each has passed on its own: which role the agent plays (a single --dev
// node, a founding member, a joining learner, or a client of a remote store) and whether its settings agree with it.
// etcd refuses conflicting bootstrap flags the same way ("multiple discovery or bootstrap flags are set"); here every
// conflict is reported before anything listens or touches the data dir, at the flag or file line that set it.
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../errors.js";
import { IDENTITY_FILE } from "../store/cluster/identity.js";
import { NAME_PATTERN, parseInitialCluster } from "../store/cluster/ids.js";
import { DEFAULT_LISTEN_CLIENT } from "./defaults.js";
import type { VigieConfig } from "./schema.js";

/** The agent settings, by their name in the config file. */
type AgentField =
  | "dev"
  | "initial_cluster"
  | "join"
  | "store_endpoints"
  | "listen_client"
  | "listen_peer"
  | "advertise_client"
  | "advertise_peer"
  | "name"
  | "voters";

/** How a field's problem is reported: where it was set (`flag --x`, `file:line:col`) and whether by a flag. */
export interface FieldSource {
  /** `flag --dev` or `vigie.yaml:3:6`. */
  where(field: AgentField): string;
  /** True when the field was set on the command line (then it is named `--x-y`, else `x_y` as in the file). */
  byFlag(field: AgentField): boolean;
  /** True when the user set the field at all (a default does not count). */
  given(field: AgentField): boolean;
}

/** Why two settings cannot be given together, in the order they are checked. */
const EXCLUSIONS: ReadonlyArray<{ first: AgentField; second: AgentField; why: string }> = [
  { first: "dev", second: "initial_cluster", why: "dev runs a single node of its own" },
  { first: "dev", second: "join", why: "dev runs a single node of its own" },
  { first: "dev", second: "voters", why: "dev runs a single node of its own, the only voter" },
  { first: "dev", second: "store_endpoints", why: "dev starts an embedded store, store_endpoints uses a remote one" },
  {
    first: "join",
    second: "initial_cluster",
    why: "a new member either founds a cluster (initial_cluster) or joins a running one (join)",
  },
  {
    first: "store_endpoints",
    second: "initial_cluster",
    why: "with store_endpoints the agent is a client and keeps no replica",
  },
  { first: "store_endpoints", second: "join", why: "with store_endpoints the agent is a client and keeps no replica" },
  {
    first: "store_endpoints",
    second: "advertise_peer",
    why: "with store_endpoints the agent is a client and has no peers",
  },
  {
    first: "store_endpoints",
    second: "advertise_client",
    why: "with store_endpoints the agent is a client: it is no member and advertises no URL",
  },
];

/** Every problem with the agent's role settings, one message per line; empty when they agree. */
export function roleProblems(config: VigieConfig, source: FieldSource): string[] {
  // A field set in the file is named as written there; one set by a flag, or left at its default, by its flag.
  const named = (field: AgentField) =>
    source.byFlag(field) || !source.given(field) ? `--${field.replaceAll("_", "-")}` : field;
  // voters always has a value (its default): it conflicts only when the user gave it, and other than --dev's 1.
  const isSet = (field: AgentField) => {
    if (field === "dev") return config.dev;
    if (field === "voters") return source.given(field) && config.voters !== 1;
    return config[field] !== undefined;
  };
  const problems: string[] = [];
  const report = (field: AgentField, message: string) => {
    const where = source.where(field);
    problems.push(`${where === "" ? "" : `${where}: `}${source.byFlag(field) ? "" : `${field}: `}${message}`);
  };

  for (const { first, second, why } of EXCLUSIONS) {
    if (!isSet(first) || !isSet(second)) continue;
    const reason = why.replace(/\b(dev|initial_cluster|join|store_endpoints|voters)\b/g, (field) =>
      named(field as AgentField),
    );
    report(second, `${named(first)} and ${named(second)} exclude each other: ${reason}`);
  }
  if (problems.length > 0) return problems;

  const clientRole = config.store_endpoints !== undefined;
  if (config.listen_client !== undefined) {
    const problem = listenUrlProblem(config.listen_client);
    if (problem) report("listen_client", problem);
  }
  if (!clientRole) {
    const peerProblem = listenUrlProblem(config.listen_peer);
    if (peerProblem) report("listen_peer", peerProblem);
    const client = config.listen_client ?? DEFAULT_LISTEN_CLIENT;
    if (!peerProblem && listenUrlProblem(client) === undefined && sameAddress(client, config.listen_peer)) {
      // Reported at the setting the user gave (the other one may be a default they never wrote).
      const [field, other]: [AgentField, AgentField] = source.given("listen_peer")
        ? ["listen_peer", "listen_client"]
        : ["listen_client", "listen_peer"];
      const otherText = `${named(other)}${source.given(other) ? "" : " (its default)"}`;
      report(field, `the same address as ${otherText}: the client API and the peers each need their own port`);
    }
    for (const field of ["advertise_client", "advertise_peer"] as const) {
      const value = config[field];
      const problem = value === undefined ? undefined : advertiseUrlProblem(value, field === "advertise_peer");
      if (problem) report(field, problem);
    }
    if (!peerProblem && config.advertise_peer === undefined && listensEverywhere(config.listen_peer)) {
      const founding = config.initial_cluster !== undefined && initialClusterSize(config.initial_cluster) > 1;
      if (founding || config.join !== undefined) {
        report(
          "listen_peer",
          `${config.listen_peer} listens on every interface, but the other members need an address that reaches ` +
            `this one: give it with ${named("advertise_peer")} (like http://10.0.0.5:2380)`,
        );
      }
    }
    const name = config.name ?? hostname();
    const nameOk = NAME_PATTERN.test(name);
    if (!nameOk) {
      const rule = "a member name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit";
      if (source.given("name")) report("name", `"${name}" cannot be a member name: ${rule}`);
      else problems.push(`this host's name "${name}" cannot be a member name (${rule}): choose one with --name`);
    }
    if (
      config.initial_cluster !== undefined &&
      config.join === undefined &&
      !config.dev &&
      !peerProblem &&
      nameOk &&
      !restartsFromDataDir(config, name)
    ) {
      const problem = initialClusterProblem(config, named);
      if (problem) report("initial_cluster", problem);
    }
  }
  return problems;
}

/** Throws one ConfigError listing every role problem. */
export function checkRoles(config: VigieConfig, source: FieldSource): void {
  const problems = roleProblems(config, source);
  if (problems.length > 0) throw new ConfigError(problems.join("\n"));
}

/**
 * What is wrong with a URL to listen on, or undefined. The schema already made sure it is an http(s) URL; a server
 * also needs a port of its own and plain http: vigie has no TLS, and its servers would otherwise listen in plain
 * http while telling peers and clients to speak https to them.
 */
export function listenUrlProblem(text: string): string | undefined {
  const url = URL.parse(text.trim());
  if (url === null) return `"${text}" is not a URL like http://127.0.0.1:2379`;
  if (url.protocol === "https:") {
    return `${text}: vigie serves plain http only (no TLS): use http://, or put a TLS proxy in front`;
  }
  if (url.protocol !== "http:") return `${text}: must be an http:// URL`;
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "") {
    return `${text}: a URL to listen on must not have a path, like http://${url.host}`;
  }
  if (url.port === "" && !/:80\/?$/.test(text.trim())) {
    return `${text}: needs a port, like http://${url.hostname}:2379`;
  }
  return undefined;
}

/**
 * What is wrong with a URL to advertise, or undefined. Unlike a URL to listen on, it may name a host name and a
 * default port (a proxy or a port mapping in front of this agent), but it must be an address others can reach.
 */
export function advertiseUrlProblem(text: string, peer: boolean): string | undefined {
  const url = URL.parse(text.trim());
  if (url === null) return `"${text}" is not a URL like http://10.0.0.5:2379`;
  if (url.protocol !== "http:" && url.protocol !== "https:") return `${text}: must be an http:// URL`;
  // The peer transport speaks plain http; a client may reach the API through a TLS proxy.
  if (peer && url.protocol === "https:") return `${text}: vigie's members talk plain http to each other: use http://`;
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "") {
    return `${text}: an advertised URL must not have a path, like ${url.protocol}//${url.host}`;
  }
  if (listensEverywhere(text)) {
    return `${text}: ${url.hostname} means every interface, which no one can connect to: advertise this host's address`;
  }
  if (url.port === "0") return `${text}: port 0 is not a port anyone can connect to`;
  return undefined;
}

/** A URL on the unspecified address (0.0.0.0 or ::): a server there listens on every interface. */
export function listensEverywhere(text: string): boolean {
  const hostname = URL.parse(text.trim())?.hostname;
  return hostname === "0.0.0.0" || hostname === "[::]";
}

function initialClusterSize(value: string | Record<string, string>): number {
  try {
    return parseInitialCluster(value).length;
  } catch {
    return 0; // its own problem is reported by initialClusterProblem
  }
}

/** Same host and port (port 0 means "any free port", never a clash). */
function sameAddress(a: string, b: string): boolean {
  const first = new URL(a);
  const second = new URL(b);
  const port = (url: URL) => url.port || "80";
  return port(first) !== "0" && first.hostname === second.hostname && port(first) === port(second);
}

/**
 * A restart ignores --initial-cluster, as etcd does (the data dir says who the members are): checking it against
 * this member's peer URL refused the restart that follows a `member update`, whose --initial-cluster still names
 * the old URL.
 */
function restartsFromDataDir(config: VigieConfig, name: string): boolean {
  return existsSync(join(config.data_dir ?? `${name}.vigie`, IDENTITY_FILE));
}

/** The initial cluster's own mistakes, and whether it lists this member with the peer URL it advertises. */
function initialClusterProblem(config: VigieConfig, named: (field: AgentField) => string): string | undefined {
  let members: ReturnType<typeof parseInitialCluster>;
  try {
    members = parseInitialCluster(config.initial_cluster!);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // The parser names the flag itself; the caller already says where the list was set.
    return error.message.replace(/^--initial-cluster:? ?/, "");
  }
  const name = config.name ?? hostname();
  const self = members.find((member) => member.name === name);
  if (self === undefined) {
    const whose = config.name === undefined ? `the host name "${name}" (no ${named("name")} given)` : `"${name}"`;
    return `does not list this member: its name is ${whose}; listed: ${members.map((m) => m.name).join(", ")}`;
  }
  const advertised = config.advertise_peer ?? config.listen_peer;
  const ownUrl = new URL(advertised);
  const ownPeerUrl = `${ownUrl.protocol}//${ownUrl.host}`;
  if (self.peerUrl !== ownPeerUrl) {
    const flag = config.advertise_peer === undefined ? "listen_peer" : "advertise_peer";
    return `gives "${name}" the peer URL ${self.peerUrl}, but ${named(flag)} is ${ownPeerUrl}`;
  }
  return undefined;
}
