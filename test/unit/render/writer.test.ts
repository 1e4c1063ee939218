// Writing rendered files: atomic rename, unchanged bytes untouched, check on the staged copy, backup, in-place.
import { spawnSync } from "node:child_process";
import { chmod, chown, lstat, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { syncDirectory } from "../../../src/directory-sync.js";
import { CheckFailedError } from "../../../src/render/errors.js";
import { restorePrevious, type WriteSpec, writeRendered } from "../../../src/render/writer.js";

let dir: string;
test.before.each(async () => {
  dir = await mkdtemp(join(tmpdir(), "vigie-writer-"));
});
test.after.each(async () => {
  await rm(dir, { recursive: true, force: true });
});

function spec(overrides: Partial<WriteSpec> = {}): WriteSpec {
  return { name: "t", destination: join(dir, "out.conf"), backup: false, write: "rename", ...overrides };
}

test("writes a new file with the mode, then skips identical bytes", async () => {
  const first = await writeRendered(spec({ mode: 0o640 }), Buffer.from("a\n"));
  assert.equal(first, { changed: true, previous: undefined });
  const info = await stat(join(dir, "out.conf"));
  assert.is(info.mode & 0o777, 0o640);
  const again = await writeRendered(spec({ mode: 0o640 }), Buffer.from("a\n"));
  assert.equal(again, { changed: false });
  assert.is((await stat(join(dir, "out.conf"))).ino, info.ino);
  assert.equal(await readdir(dir), ["out.conf"]);
});

test("a deferred directory sync is handed the destination's directory, once per rename, and syncs in the thread pool", async () => {
  const handed: string[] = [];
  const defer = (directory: string) => handed.push(directory);
  await writeRendered(spec(), Buffer.from("1"), defer);
  await writeRendered(spec(), Buffer.from("1"), defer); // unchanged: no rename, nothing to sync
  await writeRendered(spec({ write: "in-place" }), Buffer.from("2"), defer); // no rename: synced with the file
  assert.equal(handed, [dir]);
  await syncDirectory(dir);
  try {
    await syncDirectory(join(dir, "gone"));
    assert.unreachable("a missing directory must reject");
  } catch (error) {
    assert.is((error as NodeJS.ErrnoException).code, "ENOENT");
  }
});

test("rename replaces the inode; in-place keeps it", async () => {
  await writeRendered(spec(), Buffer.from("1"));
  const before = (await stat(join(dir, "out.conf"))).ino;
  const renamed = await writeRendered(spec(), Buffer.from("2"));
  assert.ok(renamed.changed && renamed.previous?.toString() === "1");
  const afterRename = (await stat(join(dir, "out.conf"))).ino;
  assert.is.not(afterRename, before);
  await writeRendered(spec({ write: "in-place", check: ["true"] }), Buffer.from("3"));
  assert.is((await stat(join(dir, "out.conf"))).ino, afterRename);
  assert.is(await readFile(join(dir, "out.conf"), "utf8"), "3");
  assert.equal(await readdir(dir), ["out.conf"]);
});

test("check runs on the staged file; a failure keeps the previous file and removes the stage", async () => {
  await writeFile(join(dir, "out.conf"), "good");
  const grep = spec({ check: ["grep", "-q", "^ok$", "{{src}}"] });
  const error = await writeRendered(grep, Buffer.from("bad\n")).catch((e: unknown) => e);
  assert.instance(error, CheckFailedError);
  assert.match((error as Error).message, "t: check failed: grep -q ^ok$");
  assert.is(await readFile(join(dir, "out.conf"), "utf8"), "good");
  assert.equal(await readdir(dir), ["out.conf"]);
  const passed = await writeRendered(grep, Buffer.from("ok\n"));
  assert.ok(passed.changed);
  assert.is(await readFile(join(dir, "out.conf"), "utf8"), "ok\n");
});

test("with a check, the stage is flushed alongside it: mode kept, no descriptor left open, pass or fail", async () => {
  const openFds = async () => (await readdir("/proc/self/fd")).length;
  const checked = spec({ mode: 0o600, check: ["grep", "-q", "^ok", "{{src}}"] });
  await writeRendered(checked, Buffer.from("ok 0\n"));
  const before = await openFds();
  for (let i = 1; i <= 20; i++) {
    const outcome = await writeRendered(checked, Buffer.from(i % 2 === 0 ? `ok ${i}\n` : `bad ${i}\n`)).catch(
      (error: unknown) => error,
    );
    if (i % 2 === 0) assert.equal(outcome, { changed: true, previous: Buffer.from(`ok ${i - 2 || 0}\n`) });
    else assert.instance(outcome, CheckFailedError);
  }
  // The check's pipes are closed by libuv on a later turn of the loop (handle close is asynchronous); let it run so
  // that only a leaked staged-file descriptor can make the counts differ (seen once under load without this).
  await new Promise((resolveTurn) => setTimeout(resolveTurn, 20));
  assert.is(await openFds(), before, "every staged file's descriptor is closed");
  assert.is(await readFile(join(dir, "out.conf"), "utf8"), "ok 20\n");
  assert.is((await stat(join(dir, "out.conf"))).mode & 0o777, 0o600);
  assert.equal(await readdir(dir), ["out.conf"], "no staged file left behind");
});

test("a check that hangs is killed after its timeout; the previous file stays and the stage is removed", async () => {
  const destination = join(dir, "out.conf");
  await writeFile(destination, "old\n");
  const started = performance.now();
  try {
    await writeRendered(spec({ check: ["sleep", "30"], checkTimeoutMs: 200 }), Buffer.from("new\n"));
    assert.unreachable("a hanging check must fail");
  } catch (error) {
    assert.instance(error, CheckFailedError);
    assert.match((error as Error).message, "timed out after 200 ms");
  }
  assert.ok(performance.now() - started < 5_000);
  assert.is(await readFile(destination, "utf8"), "old\n");
  assert.equal(await readdir(dir), ["out.conf"]);
});

test("a check program that does not exist fails clearly", async () => {
  const error = await writeRendered(spec({ check: ["/nonexistent/checker", "{{src}}"] }), Buffer.from("x")).catch(
    (e: unknown) => e,
  );
  assert.instance(error, CheckFailedError);
  assert.match((error as Error).message, "cannot run /nonexistent/checker");
});

test("backup keeps the previous bytes; restorePrevious puts them back or removes a new file", async () => {
  await writeFile(join(dir, "out.conf"), "v1");
  const outcome = await writeRendered(spec({ backup: true }), Buffer.from("v2"));
  assert.is(await readFile(join(dir, "out.conf.bak"), "utf8"), "v1");
  assert.ok(outcome.changed);
  if (outcome.changed) await restorePrevious(spec(), outcome.previous);
  assert.is(await readFile(join(dir, "out.conf"), "utf8"), "v1");
  const fresh = spec({ destination: join(dir, "new.conf") });
  const created = await writeRendered(fresh, Buffer.from("n"));
  if (created.changed) await restorePrevious(fresh, created.previous);
  assert.equal((await readdir(dir)).sort(), ["out.conf", "out.conf.bak"]);
});

test("a missing destination directory is created; a parent that is a file fails naming the template", async () => {
  const nested = join(dir, "no", "such", "x.conf");
  assert.equal(await writeRendered(spec({ destination: nested }), Buffer.from("x")), {
    changed: true,
    previous: undefined,
  });
  assert.is(await readFile(nested, "utf8"), "x");
  await writeFile(join(dir, "plain-file"), "");
  const error = await writeRendered(spec({ destination: join(dir, "plain-file", "x") }), Buffer.from("x")).catch(
    (e: unknown) => e,
  );
  assert.match((error as Error).message, /^t: cannot read .*not a directory/);
});

test("an in-place write that fails half-way (EFBIG) puts the previous bytes back, or removes a new file", async () => {
  // The file size limit makes the kernel refuse the write after the open truncated the destination, exactly as a
  // full disk would. It applies only to the child process that writes; SIGXFSZ is ignored there so that the write
  // fails with EFBIG instead of killing it.
  const writer = resolve(import.meta.dirname, "../../../src/render/writer.ts");
  const script = join(dir, "efbig.mts");
  await writeFile(
    script,
    `import { writeRendered } from ${JSON.stringify(writer)};
process.on("SIGXFSZ", () => undefined);
const big = Buffer.alloc(200_000, "x");
for (const destination of process.argv.slice(2)) {
  try {
    await writeRendered({ name: "t", destination, backup: false, write: "in-place" }, big);
    console.log("written", destination);
  } catch (error) {
    console.log("failed:", error.message);
  }
}
`,
  );
  const existing = join(dir, "app.conf");
  await writeFile(existing, "good config\n".repeat(10));
  const fresh = join(dir, "fresh.conf");
  const child = spawnSync(
    "sh",
    ["-c", 'ulimit -f 10 && exec "$0" --import tsx "$@"', process.execPath, script, existing, fresh],
    {
      encoding: "utf8",
    },
  );
  assert.is(child.status, 0, child.stderr);
  assert.match(child.stdout, /failed: t: writing .*app\.conf: EFBIG/);
  assert.match(child.stdout, /failed: t: writing .*fresh\.conf: EFBIG/);
  assert.is(await readFile(existing, "utf8"), "good config\n".repeat(10));
  assert.equal((await readdir(dir)).sort(), ["app.conf", "efbig.mts"]);
});

test("without mode/owner/group in the config, a rewrite keeps the file's own (a 0600 secret stays 0600)", async () => {
  const destination = join(dir, "out.conf");
  await writeFile(destination, "old\n");
  await chmod(destination, 0o600);
  // Changing the owner needs root; unprivileged runs check the mode alone.
  const privileged = process.geteuid?.() === 0;
  if (privileged) await chown(destination, 65534, 65533);
  for (const write of ["rename", "in-place"] as const) {
    const outcome = await writeRendered(spec({ write, check: ["true", "{{src}}"] }), Buffer.from(`new ${write}\n`));
    assert.ok(outcome.changed);
    const info = await stat(destination);
    assert.is(info.mode & 0o7777, 0o600, write);
    if (privileged) assert.equal([info.uid, info.gid], [65534, 65533], write);
  }
  // A file that did not exist gets the default 0644 (less the umask), owned by whoever runs vigie.
  await writeRendered(spec({ destination: join(dir, "fresh.conf") }), Buffer.from("x"));
  assert.is((await stat(join(dir, "fresh.conf"))).mode & 0o022, 0);
});

test("a mode or owner set in the config applies to a file whose bytes are already right, without rewriting it", async () => {
  const destination = join(dir, "out.conf");
  await writeRendered(spec(), Buffer.from("same\n"));
  const before = await stat(destination);
  const outcome = await writeRendered(spec({ mode: 0o640 }), Buffer.from("same\n"));
  assert.equal(outcome, { changed: false });
  const after = await stat(destination);
  assert.is(after.mode & 0o7777, 0o640);
  assert.is(after.ino, before.ino);
  if (process.geteuid?.() === 0) {
    await writeRendered(spec({ mode: 0o640, owner: 65534, group: "65533" }), Buffer.from("same\n"));
    const owned = await stat(destination);
    assert.equal([owned.uid, owned.gid, owned.ino], [65534, 65533, before.ino]);
  }
});

test("a destination that is a symlink is replaced by a regular file and its target left alone, like consul-template", async () => {
  const target = join(dir, "target.conf");
  const destination = join(dir, "out.conf");
  await writeFile(target, "target\n");
  await symlink(target, destination);
  // Same bytes through the link: nothing to do, the link stays.
  assert.equal(await writeRendered(spec(), Buffer.from("target\n")), { changed: false });
  assert.ok((await lstat(destination)).isSymbolicLink());
  const outcome = await writeRendered(spec(), Buffer.from("new\n"));
  assert.ok(outcome.changed && outcome.previous?.toString() === "target\n");
  assert.ok((await lstat(destination)).isFile());
  assert.is(await readFile(destination, "utf8"), "new\n");
  assert.is(await readFile(target, "utf8"), "target\n");
});
test.run();
