// Side-by-side lease scenarios: a 3-member vigie cluster and a 3-member etcd 3.4 cluster behind one small interface
// (the JSON gateway of each member, its process id for SIGSTOP/SIGCONT, kill -9 and a restart on the same data dir),
// so one scenario runs against both and its assertions hold for both.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { call, StreamSession } from "../helpers/api-client.js";
import { ClusterFixture, startEtcdCluster } from "../helpers/cluster.js";
import { waitFor } from "../helpers/ports.js";

export interface Member {
  readonly clientUrl: string;
  pid(): number;
  /** kill -9, waiting until the process is gone. */
  kill(): Promise<void>;
  /** Starts the member again on its data dir (and ports). */
  restart(): Promise<void>;
  /** The tail of the member's output (for failure messages). */
  logs(): string;
}

export interface Cluster {
  readonly label: string;
  readonly members: Member[];
  cleanup(): Promise<void>;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startVigie(): Promise<Cluster> {
  const fixture = await ClusterFixture.create("lease-failover");
  const agents = await fixture.startStatic(["a1", "a2", "a3"]);
  const members = agents.map(
    (agent): Member => ({
      clientUrl: agent.clientUrl,
      pid: () => agent.pid ?? 0,
      kill: () => agent.kill("SIGKILL"),
      restart: () => agent.start(),
      logs: () => agent.logs(),
    }),
  );
  return { label: "vigie", members, cleanup: () => fixture.cleanup() };
}

export async function startEtcd(binary: string): Promise<Cluster> {
  const root = await mkdtemp(join(tmpdir(), "vigie-lease-etcd-"));
  const etcd = await startEtcdCluster(binary, root, 3);
  const members = etcd.map(
    (member): Member => ({
      clientUrl: member.clientUrl,
      pid: () => member.pid ?? 0,
      kill: () => member.kill("SIGKILL"),
      restart: async () => {
        member.start(binary);
        // etcd answers /health only once the cluster has a leader: the caller restarts members in parallel.
        await waitFor(
          `etcd ${member.name} healthy again`,
          async () => {
            if (!member.alive()) throw new Error(`etcd ${member.name} exited:\n${member.logs()}`);
            const response = await fetch(`${member.clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
            return ((await response.json()) as { health?: string }).health === "true";
          },
          20_000,
        );
      },
      logs: () => member.logs(),
    }),
  );
  return {
    label: "etcd",
    members,
    cleanup: async () => {
      await Promise.all(etcd.map((m) => m.kill("SIGKILL")));
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** A gateway call whose answer must be 200; returns the body. */
export async function ok(url: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const answer = await call(url, path, body);
  if (answer.status !== 200 || answer.json === undefined) {
    throw new Error(`${url}${path} answered ${answer.status}: ${answer.text.slice(0, 300)}`);
  }
  return answer.json;
}

/** The member that currently leads (asked of every member, since some may be stopped). */
export async function leaderOf(cluster: Cluster, among = cluster.members): Promise<Member> {
  return await waitFor(
    `${cluster.label}: a leader among ${among.length} members`,
    async () => {
      for (const member of among) {
        try {
          const answer = await fetch(`${member.clientUrl}/v3/maintenance/status`, {
            method: "POST",
            body: "{}",
            signal: AbortSignal.timeout(500),
          });
          const status = (await answer.json()) as { leader?: string; header?: { member_id?: string } };
          if (status.leader !== undefined && status.leader === status.header?.member_id) return member;
        } catch {
          // stopped or restarting: ask the next one
        }
      }
      return undefined;
    },
    20_000,
  );
}

/** One keepalive (a stream with one message); the `result` line's TTL as a number (0: the lease is gone). */
export async function renewOnce(url: string, id: string, timeoutMs = 30_000): Promise<number> {
  const answer = await fetch(`${url}/v3/lease/keepalive`, {
    method: "POST",
    body: JSON.stringify({ ID: id }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const line = (await answer.text()).split("\n")[0] ?? "";
  const parsed = JSON.parse(line) as { result?: { TTL?: string }; error?: unknown };
  if (parsed.result === undefined) throw new Error(`keepalive on ${url} answered ${answer.status}: ${line}`);
  return Number(parsed.result.TTL ?? 0);
}

export async function timeToLive(url: string, id: string): Promise<number> {
  return Number((await ok(url, "/v3/lease/timetolive", { ID: id })).TTL ?? 0);
}

const b64 = (text: string) => Buffer.from(text).toString("base64");

/** Grants a lease of `ttlSeconds` on `url` and attaches `keys` to it; returns the lease id. */
export async function grantWithKeys(url: string, ttlSeconds: number, keys: string[]): Promise<string> {
  const id = String((await ok(url, "/v3/lease/grant", { TTL: ttlSeconds })).ID);
  for (const key of keys) await ok(url, "/v3/kv/put", { key: b64(key), value: b64("up"), lease: id });
  return id;
}

/** How many of the keys under `prefix` exist, read (serializable) from `url`. */
export async function countKeys(url: string, prefix: string): Promise<number> {
  const end = Buffer.from(prefix);
  end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
  const answer = await ok(url, "/v3/kv/range", {
    key: b64(prefix),
    range_end: end.toString("base64"),
    serializable: true,
    count_only: true,
  });
  return Number(answer.count ?? 0);
}

/** A watch on `prefix` that records when each DELETE event arrived (ms since the epoch). */
export class DeleteWatch {
  readonly deletedAtMs: number[] = [];
  private readonly session: StreamSession;
  private closed = false;

  private constructor(url: string) {
    this.session = new StreamSession(url, "/v3/watch");
  }

  static async open(url: string, prefix: string): Promise<DeleteWatch> {
    const watch = new DeleteWatch(url);
    const end = Buffer.from(prefix);
    end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
    watch.session.send({ create_request: { key: b64(prefix), range_end: end.toString("base64") } });
    watch.session.finish();
    const created = (await watch.session.next(10_000)).result as { created?: boolean } | undefined;
    if (created?.created !== true) throw new Error("the watch was not created");
    void watch.pump();
    return watch;
  }

  private async pump(): Promise<void> {
    while (!this.closed) {
      let line: string | undefined;
      try {
        line = await this.session.nextLine(1_000);
      } catch {
        continue; // quiet for a second: look again (or stop once closed)
      }
      if (line === undefined) return;
      const events = ((JSON.parse(line) as { result?: { events?: { type?: string }[] } }).result?.events ?? []).filter(
        (event) => event.type === "DELETE",
      );
      for (const _ of events) this.deletedAtMs.push(Date.now());
    }
  }

  close(): void {
    this.closed = true;
    this.session.close();
  }
}

/** Waits until `watch` saw `count` DELETE events; returns when the last one arrived. */
export async function deletesSeen(watch: DeleteWatch, count: number, timeoutMs: number): Promise<number> {
  await waitFor(`${count} DELETE events`, async () => watch.deletedAtMs.length >= count, timeoutMs);
  return watch.deletedAtMs[count - 1] ?? 0;
}
