// Shared pieces of the membership-*.test.ts files: raw calls to a member's etcd JSON gateway (status and body kept,
// so a test sees the exact error etcd's clients would see), finding the leader and members by name, a write load
// that records which writes were acknowledged, and a guard that prints every agent's log tail when a test fails.
import { existsSync } from "node:fs";
import { type AgentProcess, ClusterFixture, VIGIE_CLI } from "../helpers/cluster.js";
import { waitFor } from "../helpers/ports.js";

export interface ApiAnswer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: raw JSON answers, checked field by field by the tests
  body: any;
  elapsedMs: number;
}

/** POSTs `body` to `path` on `url` and returns the HTTP status and parsed JSON; network errors throw. */
export async function api(url: string, path: string, body: unknown = {}, timeoutMs = 10_000): Promise<ApiAnswer> {
  const startedMs = Date.now();
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: kept as text for the failure message.
  }
  return { status: response.status, body: parsed, elapsedMs: Date.now() - startedMs };
}

export const b64 = (text: string): string => Buffer.from(text).toString("base64");

export async function put(url: string, key: string, value: string, timeoutMs = 10_000): Promise<ApiAnswer> {
  return api(url, "/v3/kv/put", { key: b64(key), value: b64(value) }, timeoutMs);
}

/** `key`'s value as `url`'s member holds it now (a serializable read: no quorum, what this member applied). */
export async function serializableValue(url: string, key: string): Promise<string | undefined> {
  const answer = await api(url, "/v3/kv/range", { key: b64(key), serializable: true });
  const kv = (answer.body.kvs as Array<{ value?: string }> | undefined)?.[0];
  return kv === undefined ? undefined : Buffer.from(kv.value ?? "", "base64").toString("utf8");
}

export interface WireMember {
  ID: string;
  name?: string;
  peerURLs?: string[];
  clientURLs?: string[];
  isLearner?: boolean;
}

export async function memberList(url: string): Promise<WireMember[]> {
  const answer = await api(url, "/v3/cluster/member/list");
  if (answer.status !== 200) throw new Error(`member list on ${url}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body.members as WireMember[];
}

/** This agent's member id (decimal string, as on the wire), from its own status. */
export async function memberIdOf(agent: AgentProcess): Promise<string> {
  const answer = await api(agent.clientUrl, "/v3/maintenance/status");
  return answer.body.header.member_id as string;
}

/** The agent among `agents` that says it leads (and whose status agrees on the leader id). */
export async function leaderOf(agents: readonly AgentProcess[], timeoutMs = 10_000): Promise<AgentProcess> {
  return waitFor(
    "a leader",
    async () => {
      for (const agent of agents) {
        if (!agent.alive()) continue;
        const answer = await api(agent.clientUrl, "/v3/maintenance/status", {}, 1000).catch(() => undefined);
        const leader = answer?.body?.leader;
        if (leader !== undefined && leader !== "0" && leader === answer?.body.header.member_id) return agent;
      }
      return undefined;
    },
    timeoutMs,
  );
}

/** Writes `/load/<w>/<i>` through `urls` until stopped; only writes answered 200 count as acknowledged. */
export class WriteLoad {
  readonly acknowledged: string[] = [];
  failures = 0;
  private running = true;
  private readonly writers: Promise<void>[];

  constructor(urls: readonly string[]) {
    this.writers = urls.map(async (url, w) => {
      for (let i = 0; this.running; i++) {
        const key = `/load/${w}/${i}`;
        const answer = await put(url, key, "x", 8000).catch(() => undefined);
        if (answer?.status === 200) this.acknowledged.push(key);
        else {
          this.failures++;
          // A member that refuses (removed, stopped) would otherwise spin: a client backs off before retrying.
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.writers);
  }

  /** Acknowledged keys missing from `url` (read linearizably). */
  async lost(url: string): Promise<string[]> {
    const answer = await api(url, "/v3/kv/range", { key: b64("/load/"), range_end: b64("/load0"), keys_only: true });
    if (answer.status !== 200) throw new Error(`range on ${url}: ${answer.status} ${JSON.stringify(answer.body)}`);
    const stored = new Set(
      ((answer.body.kvs ?? []) as Array<{ key: string }>).map((kv) => Buffer.from(kv.key, "base64").toString()),
    );
    return this.acknowledged.filter((key) => !stored.has(key));
  }
}

export function requireBuiltCli(): void {
  if (!existsSync(VIGIE_CLI)) throw new Error(`${VIGIE_CLI} is missing: run npm run build first`);
}

/**
 * Runs `body`; on failure prints every agent's log tail (the only record of what the processes did). The agents
 * are always killed and their files removed: a live child would keep the test process (and CI) waiting forever.
 */
export async function withLogsOnFailure(fixture: ClusterFixture, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    for (const agent of fixture.agents) console.error(`---- ${agent.name}\n${agent.logs().slice(-4000)}`);
    throw error;
  } finally {
    await fixture.cleanup();
  }
}

/** What `withFounders` hands its body: the fixture (for joiners), the founding members and their leader. */
export interface FoundedCluster {
  fixture: ClusterFixture;
  founders: AgentProcess[];
  leader: AgentProcess;
}

/**
 * The opening of most membership tests: a cluster of `names` bootstrapped statically (wanting `voters` voters, with
 * `env` for every agent), its leader found, then `body`; every agent's log tail printed if it fails (see
 * withLogsOnFailure), and everything killed and removed at the end.
 */
export async function withFounders(
  label: string,
  names: string[],
  options: { voters: number; env?: Record<string, string> },
  body: (cluster: FoundedCluster) => Promise<void>,
): Promise<void> {
  requireBuiltCli();
  const fixture = await ClusterFixture.create(label, options.env);
  await withLogsOnFailure(fixture, async () => {
    const founders = await fixture.startStatic(names, options.voters);
    const leader = await leaderOf(founders);
    await body({ fixture, founders, leader });
  });
}

/** Whether verbose timing lines are wanted (VIGIE_TEST_VERBOSE=1); the measured numbers are always printed. */
export function note(text: string): void {
  console.log(`  ${text}`);
}

/** How many ~400 kB values `withBigSnapshotJoiner` writes: about 24 MB, a snapshot that takes a while to stream. */
export const BIG_VALUES = 60;

/**
 * Three founders holding about 24 MB, and a learner joining them, started: the leader begins streaming it a
 * snapshot as soon as it is added, and start() returns once the learner's API answers, while that snapshot is on
 * the way.
 */
export async function withBigSnapshotJoiner(
  fixture: ClusterFixture,
  founderNames: [string, string, string],
  joinerName: string,
): Promise<{ founders: AgentProcess[]; leader: AgentProcess; joiner: AgentProcess }> {
  const founders = await fixture.startStatic(founderNames, 3);
  const leader = await leaderOf(founders);
  const value = "x".repeat(400_000);
  for (let i = 0; i < BIG_VALUES; i += 6) {
    await Promise.all(Array.from({ length: 6 }, (_, k) => put(leader.clientUrl, `/big/${i + k}`, value, 20_000)));
  }
  const joiner = await fixture.defineJoiner(joinerName, leader.clientUrl, 3);
  await joiner.start();
  return { founders, leader, joiner };
}
