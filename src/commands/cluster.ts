// `vigie member list|add|remove|promote` and `vigie status`. Member IDs are hex, like etcdctl prints them.
import { EXIT_FAILURE, EXIT_OK, StoreUnavailableError, UsageError } from "../errors.js";
import type { Member, StatusResult } from "../store/client.js";
import type { ClientOptions } from "./options.js";
import {
  formatTable,
  headerJson,
  hexToId,
  idToHex,
  printLine,
  rawNumber,
  toJson,
  withoutEndpoint,
  withStore,
} from "./output.js";

function memberJson(member: Member): Record<string, unknown> {
  const out: Record<string, unknown> = { ID: rawNumber(member.id) };
  if (member.name !== "") out.name = member.name;
  if (member.peerUrls.length > 0) out.peerURLs = member.peerUrls;
  if (member.clientUrls.length > 0) out.clientURLs = member.clientUrls;
  if (member.isLearner) out.isLearner = true;
  return out;
}

function memberRow(member: Member): string[] {
  return [
    idToHex(member.id),
    // etcd: a member added but not started yet has no name.
    member.name === "" ? "unstarted" : "started",
    member.name,
    member.peerUrls.join(","),
    member.clientUrls.join(","),
    String(member.isLearner),
  ];
}

const MEMBER_HEADERS = ["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"];

export async function runMember(
  action: "list" | "add" | "remove" | "promote" | "update",
  args: string[],
  options: ClientOptions & { learner: boolean },
): Promise<number> {
  if (action === "list") {
    const result = await withStore(options, (client) => client.memberList());
    if (options.writeOut === "json") {
      printLine(toJson({ header: headerJson(result.header), members: result.members.map(memberJson) }));
    } else if (options.writeOut === "simple") {
      // etcdctl's default: one comma-separated line per member, for scripts that cut fields.
      for (const member of result.members) printLine(memberRow(member).join(", "));
    } else {
      printLine(formatTable(MEMBER_HEADERS, result.members.map(memberRow)));
    }
    return EXIT_OK;
  }
  if (action === "add") {
    const [name, peerUrlList] = args;
    if (name === undefined || peerUrlList === undefined) throw new UsageError("member add expects NAME PEERURLS");
    const peerUrls = parsePeerUrls(peerUrlList, "member add");
    const peerUrl = peerUrls[0]!;
    const result = await withStore(options, (client) => client.memberAdd(peerUrls, options.learner));
    if (options.writeOut === "json") {
      const out = { header: headerJson(result.header), member: memberJson(result.member) };
      printLine(toJson({ ...out, members: result.members.map(memberJson) }));
      return EXIT_OK;
    }
    const kind = options.learner ? "learner " : "";
    printLine(`Member ${kind}${idToHex(result.member.id)} added to cluster ${idToHex(result.header.clusterId)}`);
    // What the new member needs to start (etcdctl prints the same facts as environment variables).
    const cluster = result.members.map((member) =>
      member.id === result.member.id ? `${name}=${peerUrl}` : `${member.name}=${member.peerUrls[0] ?? ""}`,
    );
    printLine("");
    printLine(`--name ${name} --listen-peer ${peerUrl} --initial-cluster ${cluster.join(",")}`);
    return EXIT_OK;
  }
  const [hexId] = args;
  if (hexId === undefined) throw new UsageError(`member ${action} expects a member ID`);
  const id = hexToId(hexId, `member ${action}`, "member");
  if (action === "update") {
    const peerUrlList = args[1];
    if (peerUrlList === undefined) throw new UsageError("member update needs the member's new peer URLs (--peer-urls)");
    const peerUrls = parsePeerUrls(peerUrlList, "member update");
    const result = await withStore(options, (client) => client.memberUpdate(id, peerUrls));
    if (options.writeOut === "json") {
      printLine(toJson({ header: headerJson(result.header), members: result.members.map(memberJson) }));
    } else {
      printLine(`Member ${idToHex(id)} updated in cluster ${idToHex(result.header.clusterId)}`);
    }
    return EXIT_OK;
  }
  // Only the leader knows whether a learner has caught up: a promote sent to a follower could skip that check.
  const target = action === "promote" ? { ...options, endpoints: [await leaderEndpoint(options)] } : options;
  const result = await withStore(target, (client) =>
    action === "remove" ? client.memberRemove(id) : client.memberPromote(id),
  );
  if (options.writeOut === "json") {
    printLine(toJson({ header: headerJson(result.header), members: result.members.map(memberJson) }));
  } else {
    const verb = action === "remove" ? "removed from" : "promoted in";
    printLine(`Member ${idToHex(id)} ${verb} cluster ${idToHex(result.header.clusterId)}`);
  }
  return EXIT_OK;
}

/** The client URL of the current leader, asked of any endpoint that answers (its status names the leader). */
async function leaderEndpoint(options: ClientOptions): Promise<string> {
  const { leader, members } = await withStore(options, async (client) => ({
    leader: (await client.status()).leader,
    members: (await client.memberList()).members,
  }));
  const endpoint = members.find((member) => member.id === leader)?.clientUrls[0];
  if (leader === "0" || endpoint === undefined) {
    throw new StoreUnavailableError(
      leader === "0" ? "the cluster has no leader now" : `the leader ${idToHex(leader)} has no client URL`,
    );
  }
  return endpoint;
}

interface StatusRow {
  endpoint: string;
  member: Member;
  status: StatusResult | undefined;
  error: string | undefined;
}

function roleOf(row: StatusRow): string {
  if (row.status === undefined) return "unreachable";
  if (row.status.isLearner || row.member.isLearner) return "learner";
  return row.status.leader === row.status.header.memberId ? "leader" : "follower";
}

/** One row per member: asks every member's own client URL for its status (unreachable members shown as such). */
export async function runStatus(options: ClientOptions): Promise<number> {
  const { members } = await withStore(options, (client) => client.memberList());
  const rows: StatusRow[] = await Promise.all(
    members.map(async (member): Promise<StatusRow> => {
      const endpoint = member.clientUrls[0] ?? "";
      if (endpoint === "") return { endpoint, member, status: undefined, error: "no client URL (not started)" };
      try {
        const status = await withStore({ ...options, endpoints: [endpoint] }, (client) => client.status());
        return { endpoint, member, status, error: undefined };
      } catch (error) {
        return { endpoint, member, status: undefined, error: withoutEndpoint((error as Error).message, endpoint) };
      }
    }),
  );
  if (options.writeOut === "json") {
    const out = rows.map((row) => ({
      Endpoint: row.endpoint,
      name: row.member.name,
      ID: rawNumber(row.member.id),
      role: roleOf(row),
      ...(row.status === undefined
        ? { error: row.error }
        : {
            Status: {
              header: headerJson(row.status.header),
              version: row.status.version,
              dbSize: row.status.dbSize,
              leader: rawNumber(row.status.leader),
              raftIndex: row.status.raftIndex,
              raftTerm: row.status.raftTerm,
              raftAppliedIndex: row.status.raftAppliedIndex,
              isLearner: row.status.isLearner,
              errors: row.status.errors,
            },
          }),
    }));
    printLine(toJson(out));
  } else {
    const headers = ["NAME", "ID", "ROLE", "IS LEADER", "RAFT TERM", "APPLIED INDEX", "REVISION", "ENDPOINT", "ERRORS"];
    const table = rows.map((row) => [
      row.member.name,
      idToHex(row.member.id),
      roleOf(row),
      String(roleOf(row) === "leader"),
      row.status === undefined ? "" : String(row.status.raftTerm),
      row.status === undefined ? "" : String(row.status.raftAppliedIndex),
      row.status === undefined ? "" : String(row.status.header.revision),
      row.endpoint,
      row.error ?? row.status?.errors.join("; ") ?? "",
    ]);
    printLine(formatTable(headers, table));
  }
  return rows.some((row) => row.status === undefined) ? EXIT_FAILURE : EXIT_OK;
}

/** Comma-separated peer URLs, each `scheme://host:port` with no path, as the store will check them. */
function parsePeerUrls(list: string, command: string): string[] {
  const peerUrls = list.split(",").map((url) => url.trim());
  for (const url of peerUrls) {
    if (!/^https?:\/\/[^/\s]+\/?$/.test(url)) {
      throw new UsageError(`${command}: "${url}" is not a peer URL like http://127.0.0.1:2380`);
    }
  }
  return peerUrls;
}
