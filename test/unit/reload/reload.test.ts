// Reload targets against real processes: pidfile (with and without command-line verification), process match,
// command (success, failure with restore, timeout), coalescing per batch, and the exec supervisor.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../../src/log.js";
import { MetricsRegistry } from "../../../src/metrics.js";
import { ReloadFailedError } from "../../../src/reload/errors.js";
import { ExecSupervisor } from "../../../src/reload/exec.js";
import { type ChangedFile, Reloader } from "../../../src/reload/reloader.js";
import { signalPidfile, signalProcessMatch } from "../../../src/reload/signal.js";
import { SIGNAL_APP, type SignalApp, startSignalApp } from "./app.js";

let dir: string;
const apps: SignalApp[] = [];
test.before.each(async () => {
  dir = await mkdtemp(join(tmpdir(), "vigie-reload-"));
});
test.after.each(async () => {
  for (const app of apps.splice(0)) await app.stop();
  await rm(dir, { recursive: true, force: true });
});

async function app(pidfile = "-"): Promise<SignalApp> {
  const started = await startSignalApp([pidfile]);
  apps.push(started);
  return started;
}

test("pidfile: signals the live process, verifying its command line when asked", async () => {
  const pidfile = join(dir, "app.pid");
  const target = await app(pidfile);
  assert.is(await signalPidfile("SIGHUP", pidfile, undefined), target.child.pid);
  await target.waitForLine("SIGHUP 1");
  await signalPidfile("SIGHUP", pidfile, "signal-app.mjs");
  await target.waitForLine("SIGHUP 2");
  const mismatch = await signalPidfile("SIGHUP", pidfile, "php-fpm: master").catch((e: unknown) => e);
  assert.instance(mismatch, ReloadFailedError);
  assert.match((mismatch as Error).message, 'does not contain "php-fpm: master"');
  await new Promise((r) => setTimeout(r, 50));
  assert.not.ok(target.lines.includes("SIGHUP 3"));
});

test("pidfile: missing, garbage and stale pidfiles are refused", async () => {
  const missing = await signalPidfile("SIGHUP", join(dir, "none.pid"), undefined).catch((e: unknown) => e);
  assert.match((missing as Error).message, "cannot read pidfile");
  await writeFile(join(dir, "bad.pid"), "hello");
  const garbage = await signalPidfile("SIGHUP", join(dir, "bad.pid"), undefined).catch((e: unknown) => e);
  assert.match((garbage as Error).message, "does not hold a pid");
  const gone = await app(join(dir, "gone.pid"));
  await gone.stop();
  const stale = await signalPidfile("SIGHUP", join(dir, "gone.pid"), undefined).catch((e: unknown) => e);
  assert.match((stale as Error).message, "stale pidfile");
  await writeFile(join(dir, "huge.pid"), "99999999999999999999\n");
  const huge = await signalPidfile("SIGHUP", join(dir, "huge.pid"), undefined).catch((e: unknown) => e);
  assert.match((huge as Error).message, "does not hold a pid");
});

test("pidfile: vigie's own pid is refused (a SIGHUP it does not handle would end the agent)", async () => {
  await writeFile(join(dir, "self.pid"), `${process.pid}\n`);
  const self = await signalPidfile("SIGHUP", join(dir, "self.pid"), undefined).catch((e: unknown) => e);
  assert.instance(self, ReloadFailedError);
  assert.match((self as Error).message, `pid ${process.pid} is vigie itself`);
  // Pid 1 (the application, in some containers) only with a command line that confirms it.
  await writeFile(join(dir, "init.pid"), "1\n");
  const init = await signalPidfile("SIGHUP", join(dir, "init.pid"), undefined).catch((e: unknown) => e);
  assert.match((init as Error).message, "pid 1 is the init process; set process:");
  const notApp = await signalPidfile("SIGHUP", join(dir, "init.pid"), "no-such-app-xyz").catch((e: unknown) => e);
  assert.match((notApp as Error).message, 'does not contain "no-such-app-xyz"');
});

test("process match: exactly one match is signalled, zero or several refused", async () => {
  const marker = `marker-${process.pid}-${Date.now()}`;
  const one = await startSignalApp(["-", "0", marker]);
  apps.push(one);
  await signalProcessMatch("SIGHUP", marker);
  await one.waitForLine("SIGHUP 1");
  const none = await signalProcessMatch("SIGHUP", `${marker}-nobody`).catch((e: unknown) => e);
  assert.match((none as Error).message, "no running process matches");
  apps.push(await startSignalApp(["-", "0", marker]));
  const several = await signalProcessMatch("SIGHUP", marker).catch((e: unknown) => e);
  assert.match((several as Error).message, "2 processes match");
});

function changed(template: string, reload: ChangedFile["reload"], restored: string[], created = false): ChangedFile {
  return { template, reload, restore: async () => void restored.push(template), created };
}

test("a batch reloads each target once, after all its files", async () => {
  const pidfile = join(dir, "app.pid");
  const target = await app(pidfile);
  const reloader = new Reloader(silentLogger(), new MetricsRegistry(), () => undefined);
  const restored: string[] = [];
  const reload = { signal: "SIGHUP", pidfile } as const;
  const outcomes = await reloader.reloadBatch([
    changed("a", reload, restored),
    changed("b", { ...reload }, restored),
    changed("c", undefined, restored),
  ]);
  assert.equal(outcomes, [{ target: `SIGHUP to pidfile ${pidfile}`, templates: ["a", "b"], ok: true }]);
  await target.waitForLine("SIGHUP 1");
  await new Promise((r) => setTimeout(r, 50));
  assert.not.ok(target.lines.includes("SIGHUP 2"));
});

test("a failed reload command restores its files; a command that works does not", async () => {
  const metrics = new MetricsRegistry();
  const reloader = new Reloader(silentLogger(), metrics, () => undefined);
  const restored: string[] = [];
  const marker = join(dir, "ran");
  const ok = await reloader.reloadBatch([changed("ok", { command: ["touch", marker], timeout: 5000 }, restored)]);
  assert.ok(ok[0]?.ok);
  await readFile(marker);
  const failed = await reloader.reloadBatch([
    changed("x", { command: ["sh", "-c", "echo nope >&2; exit 3"], timeout: 5000 }, restored),
    changed("y", { command: ["sh", "-c", "echo nope >&2; exit 3"], timeout: 5000 }, restored),
  ]);
  assert.is(failed.length, 1);
  assert.not.ok(failed[0]?.ok);
  assert.match(failed[0]?.error ?? "", "exit 3: nope");
  assert.equal(restored, ["x", "y"]);
  assert.equal(failed[0]?.restored, ["x", "y"]);
  // A file that did not exist before has nothing to go back to: it is kept, and not listed as restored.
  const fresh = await reloader.reloadBatch([
    changed("new", { command: ["false"], timeout: 5000 }, restored, true),
    changed("old", { command: ["false"], timeout: 5000 }, restored),
  ]);
  assert.equal(fresh[0]?.restored, ["old"]);
  assert.equal(restored, ["x", "y", "old"]);
  const slow = await reloader.reloadBatch([changed("z", { command: ["sleep", "5"], timeout: 100 }, restored)]);
  assert.match(slow[0]?.error ?? "", "timed out after 100 ms");
  assert.match(metrics.render(), /vigie_reload_failures_total 3/);
});

test("a failed signal keeps the files (only commands restore)", async () => {
  const reloader = new Reloader(silentLogger(), new MetricsRegistry(), () => undefined);
  const restored: string[] = [];
  const outcome = await reloader.reloadBatch([
    changed("a", { signal: "SIGHUP", pidfile: join(dir, "missing.pid") }, restored),
  ]);
  assert.not.ok(outcome[0]?.ok);
  assert.equal(restored, []);
});

test("exec supervisor: reload signal, restart after a crash, stop returns the exit code", async () => {
  const pidfile = join(dir, "exec.pid");
  let finalCode: number | undefined;
  const supervisor = new ExecSupervisor(
    { command: [process.execPath, SIGNAL_APP, pidfile, "7"], reload_signal: "SIGUSR2", restart: true },
    silentLogger(),
    (code) => {
      finalCode = code;
    },
  );
  supervisor.start({ forwardSignals: false });
  const waitPid = async (not?: number) => {
    for (let i = 0; i < 200; i++) {
      const text = await readFile(pidfile, "utf8").catch(() => "");
      const pid = Number(text.trim());
      if (pid > 0 && pid !== not && supervisor.pid === pid) return pid;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error("the supervised app did not start");
  };
  const first = await waitPid();
  await new Promise((r) => setTimeout(r, 100));
  assert.is(supervisor.reload(), first);
  process.kill(first, "SIGKILL");
  const second = await waitPid(first);
  assert.is.not(second, first);
  await new Promise((r) => setTimeout(r, 100));
  assert.is(await supervisor.stop(), 7);
  assert.is(finalCode, 7);
  const afterStop = (() => {
    try {
      supervisor.reload();
      return undefined;
    } catch (error) {
      return error;
    }
  })();
  assert.instance(afterStop, ReloadFailedError);
});

test("exec supervisor: a program that cannot start ends with 127 when restarts are off", async () => {
  const code = await new Promise<number>((resolveCode) => {
    const supervisor = new ExecSupervisor(
      { command: [join(dir, "no-such-program")], reload_signal: "SIGHUP", restart: false },
      silentLogger(),
      resolveCode,
    );
    supervisor.start({ forwardSignals: false });
  });
  assert.is(code, 127);
});

test.run();
