// The data dir is checked before the replica opens it, so that the message names the setting (`--data-dir X: ...`)
// rather than the first file that failed deep inside it. (A directory not writable by the agent's user is checked on
// the real binary run as "nobody", in test/integration/agent-flags.test.ts.)
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkDataDir, DataDirError } from "../../../src/agent/data-dir.js";

let dir = "";
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "vigie-data-dir-"));
  await mkdir(join(dir, "existing"));
  await writeFile(join(dir, "a-file"), "x");
});
test.after(() => rm(dir, { recursive: true, force: true }));

async function problem(path: string): Promise<string> {
  try {
    await checkDataDir(path, `--data-dir ${path}`);
  } catch (error) {
    assert.instance(error, DataDirError);
    assert.is((error as DataDirError).code, "VIGIE_ERR_DATA_DIR");
    return (error as Error).message;
  }
  return "usable";
}

test("an existing directory, or one that can be created under existing ones, is usable", async () => {
  assert.is(await problem(join(dir, "existing")), "usable");
  assert.is(await problem(join(dir, "new", "deeper", "still")), "usable");
});

test("a file, or a file on the way to it, is named as the setting's problem", async () => {
  const file = join(dir, "a-file");
  assert.is(await problem(file), `--data-dir ${file}: it is not a directory`);
  const below = join(file, "data");
  assert.is(await problem(below), `--data-dir ${below}: a part of its path is a file, not a directory`);
  const deeper = join(file, "data", "more");
  assert.is(await problem(deeper), `--data-dir ${deeper}: a part of its path is a file, not a directory`);
});

test.run();
