// This member's identity on disk (`<data-dir>/member.json`): who it is (name, member id), which cluster it belongs
// to, and the membership it started from. Written once, atomically, when the data dir is created; a restart reads it
// back and ignores --initial-cluster/--join. Without it, the data dir is "fresh": the replica must bootstrap or join.
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { VigieError } from "../../errors.js";
import type { MemberInfo } from "../replica.js";

export const IDENTITY_FILE = "member.json";

export interface MemberIdentity {
  version: 1;
  name: string;
  memberId: number;
  clusterId: number;
  /** The member table this replica starts from before any log/snapshot says otherwise. */
  bootstrapMembers: MemberInfo[];
  /** Initial Raft voters (static bootstrap); empty for a member that joined (it learns them by snapshot). */
  bootstrapVoters: number[];
}

/** The data dir holds an identity file that cannot be read: refuse to start rather than guess. */
export class IdentityFileError extends VigieError {
  constructor(path: string, reason: string) {
    super("VIGIE_ERR_IDENTITY_FILE", `${path}: ${reason}`);
  }
}

function isId(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0;
}

export async function readIdentity(dataDir: string): Promise<MemberIdentity | undefined> {
  const path = join(dataDir, IDENTITY_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new IdentityFileError(path, (error as Error).message);
  }
  let value: Partial<MemberIdentity>;
  try {
    value = JSON.parse(text) as Partial<MemberIdentity>;
  } catch (error) {
    throw new IdentityFileError(path, `not valid JSON (${(error as Error).message})`);
  }
  if (value.version !== 1) throw new IdentityFileError(path, `unknown version ${String(value.version)}`);
  if (typeof value.name !== "string" || value.name === "") throw new IdentityFileError(path, "missing name");
  if (!isId(value.memberId)) throw new IdentityFileError(path, "missing or bad memberId");
  if (!isId(value.clusterId)) throw new IdentityFileError(path, "missing or bad clusterId");
  if (!Array.isArray(value.bootstrapMembers)) throw new IdentityFileError(path, "missing bootstrapMembers");
  if (!Array.isArray(value.bootstrapVoters) || !value.bootstrapVoters.every(isId)) {
    throw new IdentityFileError(path, "bad bootstrapVoters");
  }
  return value as MemberIdentity;
}

/** Writes the identity atomically (temp file, fsync, rename, fsync dir): a crash leaves the old state or the new. */
export async function writeIdentity(dataDir: string, identity: MemberIdentity): Promise<void> {
  // Private, as etcd makes it: the log and snapshots inside hold every value, secrets included.
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, IDENTITY_FILE);
  const temp = `${path}.tmp`;
  const file = await open(temp, "w", 0o600);
  try {
    await file.writeFile(`${JSON.stringify(identity, null, 2)}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
  const dir = await open(dataDir, "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
