// Runs one differential sequence against a real etcd and vigie, op by op (etcd first, then vigie, so lease clocks
// stay close), and compares the answers after normalising what legitimately differs between two servers:
// cluster_id / member_id / raft_term (checked to be decimal strings, then dropped), revisions (made relative to
// each target's revision when the run started), lease ids (named by order of grant) and the remaining TTL of a
// lease (may differ by one second). Returns the first discrepancy, or undefined.
import { isDeepStrictEqual } from "node:util";
import { type RawAnswer, rawCall } from "./api-client.js";
import type { Op } from "./differential-ops.js";
import { RequestBuilder, styleFor, type TargetRun } from "./differential-request.js";

const REQUEST_TIMEOUT_MS = 10_000;
const REVISION_FIELDS = new Set(["revision", "create_revision", "mod_revision", "compact_revision"]);

export interface Discrepancy {
  index: number;
  op: Op;
  etcd: { path: string; body: string; status: number; answer: unknown };
  vigie: { path: string; body: string; status: number; answer: unknown };
  why: string;
}

async function send(url: string, path: string, body: string): Promise<RawAnswer> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${url}${path}: no answer within ${REQUEST_TIMEOUT_MS} ms`)),
      REQUEST_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([rawCall(url, path, body), timeout]);
  } catch (error) {
    // fetch hides the reason (a reset connection, a crashed target) in `cause`: the report needs it.
    const cause = (error as { cause?: unknown }).cause;
    throw new Error(`POST ${url}${path} ${body.slice(0, 200)}: ${String(error)}${cause ? ` (${String(cause)})` : ""}`);
  } finally {
    clearTimeout(timer);
  }
}

async function currentRevision(url: string, prefix: string): Promise<number> {
  const answer = await send(
    url,
    "/v3/kv/range",
    JSON.stringify({ key: Buffer.from(prefix, "latin1").toString("base64") }),
  );
  const revision = Number((answer.json?.header as { revision?: string } | undefined)?.revision);
  if (!Number.isSafeInteger(revision)) throw new Error(`${url}: no revision in ${answer.text}`);
  return revision;
}

/** Revokes every lease the target holds, so each run starts without leases (and `leases` lists only its own). */
async function revokeAllLeases(url: string): Promise<void> {
  const answer = await send(url, "/v3/lease/leases", "{}");
  const leases = (answer.json?.leases as Array<{ ID: string }> | undefined) ?? [];
  for (const lease of leases) await send(url, "/v3/lease/revoke", JSON.stringify({ ID: lease.ID }));
}

/**
 * Prepares a target for a run: no leases, and the store compacted at its current revision, so every run starts
 * from the same state whatever ran before it (a replay on fresh servers behaves like the run that failed: some
 * answers depend on whether the store was ever compacted). Compacting twice at one revision is an error; fine.
 */
export async function startRun(url: string, prefix: string, leaseIdBase: number): Promise<TargetRun> {
  await revokeAllLeases(url);
  const base = await currentRevision(url, prefix);
  await send(url, "/v3/kv/compaction", JSON.stringify({ revision: String(base) }));
  return { base, prefix, leases: [], leaseIdBase };
}

/** A revision as `base+N` (relative to the run's start); anything not a decimal string is kept as is. */
function relativeRevision(value: unknown, run: TargetRun): unknown {
  if (typeof value !== "string" || !/^-?\d+$/.test(value)) return value;
  const offset = Number(value) - run.base;
  return `base${offset >= 0 ? "+" : ""}${offset}`;
}

/** The answer with the target-specific parts replaced (see the file header). */
export function normalizeAnswer(value: unknown, run: TargetRun, path = ""): unknown {
  if (Array.isArray(value)) {
    const items = value.map((item) => normalizeAnswer(item, run, path));
    // etcd lists a lease's keys in map order (random): compare them as a set. Leases come by expiry on both.
    if (path === "keys") items.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
    return items;
  }
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [field, inner] of Object.entries(value as Record<string, unknown>)) {
    if (field === "header" && inner !== null && typeof inner === "object") {
      const header: Record<string, unknown> = {};
      for (const [name, item] of Object.entries(inner as Record<string, unknown>)) {
        if (name === "cluster_id" || name === "member_id" || name === "raft_term") {
          header[name] = /^\d+$/.test(String(item)) ? "<decimal>" : `NOT A DECIMAL STRING: ${JSON.stringify(item)}`;
        } else if (name === "revision") header[name] = relativeRevision(item, run);
        else header[name] = normalizeAnswer(item, run, name);
      }
      out[field] = header;
    } else if (REVISION_FIELDS.has(field)) {
      out[field] = relativeRevision(inner, run);
    } else if ((field === "ID" || field === "lease") && typeof inner === "string" && run.leases.includes(inner)) {
      out[field] = `lease#${run.leases.indexOf(inner)}`;
    } else {
      out[field] = normalizeAnswer(inner, run, field);
    }
  }
  return out;
}

/** A lease's remaining TTL ticks on two clocks: etcd's and vigie's may differ by one second. */
function alignRemainingTtl(etcd: unknown, vigie: unknown): void {
  if (etcd === null || vigie === null || typeof etcd !== "object" || typeof vigie !== "object") return;
  const e = etcd as Record<string, unknown>;
  const v = vigie as Record<string, unknown>;
  if (e.grantedTTL === undefined || typeof e.TTL !== "string" || typeof v.TTL !== "string") return;
  if (Math.abs(Number(e.TTL) - Number(v.TTL)) <= 1) v.TTL = e.TTL;
}

/** A granted lease (by any op that reached /v3/lease/grant, a malformed one too) gets the next lease name. */
function recordGrant(path: string, answer: RawAnswer, run: TargetRun): void {
  if (path === "/v3/lease/grant" && answer.status === 200 && typeof answer.json?.ID === "string")
    run.leases.push(answer.json.ID);
}

export interface Targets {
  etcd: string;
  vigie: string;
}

/** How many requests got which answer, by path and status ("/v3/kv/txn 200"): shows what a seed exercised. */
export type AnswerCounts = Map<string, number>;

/** Applies `ops` to both targets; the first answer that differs is returned. */
export async function runSequence(
  targets: Targets,
  ops: readonly Op[],
  prefix: string,
  leaseIdBase: number,
  counts: AnswerCounts = new Map(),
): Promise<Discrepancy | undefined> {
  const etcdRun = await startRun(targets.etcd, prefix, leaseIdBase);
  const vigieRun = await startRun(targets.vigie, prefix, leaseIdBase);
  for (const [index, op] of ops.entries()) {
    const etcdRequest = new RequestBuilder(etcdRun, styleFor(index)).request(op);
    const vigieRequest = new RequestBuilder(vigieRun, styleFor(index)).request(op);
    const etcdAnswer = await send(targets.etcd, etcdRequest.path, etcdRequest.body);
    const vigieAnswer = await send(targets.vigie, vigieRequest.path, vigieRequest.body);
    recordGrant(etcdRequest.path, etcdAnswer, etcdRun);
    recordGrant(vigieRequest.path, vigieAnswer, vigieRun);
    const etcdNormal = normalizeAnswer(etcdAnswer.json ?? etcdAnswer.text, etcdRun);
    const vigieNormal = normalizeAnswer(vigieAnswer.json ?? vigieAnswer.text, vigieRun);
    alignRemainingTtl(etcdNormal, vigieNormal);
    const counted = `${etcdRequest.path} ${etcdAnswer.status}`;
    counts.set(counted, (counts.get(counted) ?? 0) + 1);
    const sameStatus = etcdAnswer.status === vigieAnswer.status;
    if (sameStatus && isDeepStrictEqual(etcdNormal, vigieNormal)) continue;
    return {
      index,
      op,
      etcd: { ...etcdRequest, status: etcdAnswer.status, answer: etcdNormal },
      vigie: { ...vigieRequest, status: vigieAnswer.status, answer: vigieNormal },
      why: sameStatus ? "the bodies differ" : "the HTTP statuses differ",
    };
  }
  return undefined;
}

export function describeDiscrepancy(found: Discrepancy): string {
  const side = (name: string, s: Discrepancy["etcd"]) =>
    `  ${name}: POST ${s.path} ${s.body}\n    -> ${s.status} ${JSON.stringify(s.answer)}`;
  return [
    `op #${found.index} (${found.why}): ${JSON.stringify(found.op)}`,
    side("etcd ", found.etcd),
    side("vigie", found.vigie),
  ].join("\n");
}
