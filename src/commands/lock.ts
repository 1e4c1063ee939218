// `vigie lock NAME [COMMAND ARG...] [--ttl SECONDS]`: etcdctl 3.4's lock, on the same keys (src/store/client/lock.ts),
// so vigie and etcdctl exclude each other.
//
// Without COMMAND it prints the held key as etcdctl does (the key, then its empty value; `-w json`: the key's range
// answer) and holds the lock until SIGINT/SIGTERM, then releases it and exits 0. With COMMAND it runs it holding the
// lock, with ETCD_LOCK_KEY and ETCD_LOCK_REV in its environment as etcdctl sets them, releases the lock when it ends
// and exits with its status (etcdctl exits 1 for any failure; a script gains from the command's own code). SIGINT
// and SIGTERM are passed on to the command. Interrupted before the lock is held: the key is withdrawn, exit 1.
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { EXIT_FAILURE, EXIT_OK, UsageError, VigieError } from "../errors.js";
import { type Acquired, acquireLock, LockLostError, LockSession } from "../store/client/lock.js";
import { StoreClient } from "../store/client.js";
import { argumentBytes } from "./kv.js";
import { MAX_TTL_SECONDS } from "./lease.js";
import type { ClientOptions } from "./options.js";
import { headerJson, keyValueJson, printBytesLine, printLine, toJson } from "./output.js";

export interface LockOptions extends ClientOptions {
  ttlSeconds: number;
}

/** Exit statuses of a command killed by a signal, as a shell reports them. */
const SIGNAL_EXIT_BASE = 128;

type StopSignal = "SIGINT" | "SIGTERM";

export async function runLock(nameText: string, command: string[], options: LockOptions): Promise<number> {
  if (nameText === "") throw new UsageError("lock needs a NAME");
  if (options.ttlSeconds > MAX_TTL_SECONDS) {
    throw new UsageError(
      `--ttl expects at most ${MAX_TTL_SECONDS} seconds (etcd's largest lease), got ${options.ttlSeconds}`,
    );
  }
  const name = argumentBytes(nameText);
  // The environment of a process holds text: bytes that are not UTF-8 would reach ETCD_LOCK_KEY as U+FFFD.
  if (command.length > 0 && !Buffer.from(name.toString("utf8"), "utf8").equals(name)) {
    throw new UsageError(
      `lock ${nameText}: NAME is not UTF-8, and a COMMAND gets the held key as text in ETCD_LOCK_KEY`,
    );
  }
  const client = new StoreClient({ endpoints: options.endpoints, requestTimeoutMs: options.timeoutMs });
  const signals = new SignalWatch();
  let session: LockSession | undefined;
  let lostReason: string | undefined;
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const opening = LockSession.open(client, {
      ttlSeconds: options.ttlSeconds,
      onLost: (reason) => {
        lostReason = reason;
        if (!signals.held) {
          signals.fail(new LockLostError(`lock ${nameText}: the session ended before the lock was held: ${reason}`));
          return;
        }
        // Without a command the hold ends now, with this as its error; a command is told nothing and runs on.
        if (child !== undefined) {
          process.stderr.write(`vigie: lock ${nameText} lost: ${reason}; another holder may take it now\n`);
        }
        signals.wakeUp();
      },
    });
    let acquired: Acquired;
    try {
      try {
        session = await Promise.race([opening, signals.interrupted]);
      } catch (error) {
        // A lease granted after the signal is given back at once.
        opening.then(
          (late) => late.close().catch(() => undefined),
          () => undefined,
        );
        throw error;
      }
      acquired = await acquireLock(client, session, name, signals.interrupted);
      // A signal that came during the last step is still an interruption: the command must not start.
      if (signals.received !== undefined) throw new Interrupted(signals.received);
      signals.held = true;
    } catch (error) {
      if (!(error instanceof Interrupted)) throw error;
      throw new VigieError(
        "VIGIE_ERR_LOCK_INTERRUPTED",
        `lock ${nameText}: interrupted by ${error.signal} before it was held (its place in line is withdrawn)`,
      );
    }
    if (command.length === 0) {
      await printHeld(client, acquired, options);
      await signals.stopOrWake();
      if (lostReason !== undefined) throw new LockLostError(`lock ${nameText} lost: ${lostReason}`);
      return EXIT_OK;
    }
    const started = spawn(command[0]!, command.slice(1), {
      stdio: "inherit",
      env: {
        ...process.env,
        ETCD_LOCK_KEY: acquired.key.toString(),
        ETCD_LOCK_REV: String(acquired.header.revision),
      },
    });
    child = started;
    signals.forwardTo(started);
    return await new Promise<number>((resolve, reject) => {
      started.once("error", (error) =>
        reject(
          new VigieError("VIGIE_ERR_LOCK_COMMAND", `lock ${nameText}: cannot run ${command[0]}: ${error.message}`),
        ),
      );
      started.once("exit", (code, signal) => {
        const number = signal === null ? undefined : constants.signals[signal];
        resolve(code ?? (number === undefined ? EXIT_FAILURE : SIGNAL_EXIT_BASE + number));
      });
    });
  } finally {
    signals.close();
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    if (session !== undefined) {
      await session.close().catch((error: unknown) => {
        process.stderr.write(
          `vigie: lock ${nameText}: could not release it (${(error as Error).message}); it ends when lease ` +
            `${session?.leaseHex} expires, within ${options.ttlSeconds} s\n`,
        );
      });
    }
    await client.close();
  }
}

/** etcdctl prints the held key as `get` would: the key and its (empty) value, or the key's range answer in JSON. */
async function printHeld(client: StoreClient, acquired: Acquired, options: ClientOptions): Promise<void> {
  if (options.writeOut !== "json") {
    printBytesLine(acquired.key);
    printBytesLine(Buffer.alloc(0));
    return;
  }
  const held = await client.range(acquired.key);
  const out: Record<string, unknown> = { header: headerJson(held.header) };
  if (held.kvs.length > 0) out.kvs = held.kvs.map(keyValueJson);
  if (held.count !== 0) out.count = held.count;
  printLine(toJson(out));
}

class Interrupted extends Error {
  constructor(readonly signal: StopSignal) {
    super(`interrupted by ${signal}`);
  }
}

/**
 * SIGINT/SIGTERM while the lock is taken or held. Before the lock is held they end the wait (`interrupted`
 * rejects); while it is held they end the hold (`stopOrWake`); once a command runs they are passed on to it, and
 * the lock is released when it exits.
 */
class SignalWatch {
  /** Rejects at the first SIGINT/SIGTERM (Interrupted) or `fail`, while the lock is not held yet. */
  readonly interrupted: Promise<never>;
  /** Set once the lock is held: signals then only end the hold. */
  held = false;
  /** The first SIGINT/SIGTERM that came before the lock was held. */
  received: StopSignal | undefined;
  private reject: ((error: Error) => void) | undefined;
  private wake: (() => void) | undefined;
  private woken = false;
  private target: { kill(signal: StopSignal): boolean } | undefined;
  private pending: StopSignal | undefined;
  private readonly onInterrupt = () => this.stop("SIGINT");
  private readonly onTerminate = () => this.stop("SIGTERM");

  constructor() {
    this.interrupted = new Promise<never>((_resolve, reject) => {
      this.reject = reject;
    });
    // Only ever raced against the work: never left unhandled when no signal comes.
    this.interrupted.catch(() => undefined);
    process.on("SIGINT", this.onInterrupt);
    process.on("SIGTERM", this.onTerminate);
  }

  private stop(signal: StopSignal): void {
    if (this.target !== undefined) {
      this.target.kill(signal);
      return;
    }
    // Between the lock being held and the command starting, the signal waits for the command.
    this.pending = signal;
    if (!this.held) this.received ??= signal;
    this.reject?.(new Interrupted(signal));
    this.wakeUp();
  }

  /** Ends the wait for the lock with `error`. */
  fail(error: Error): void {
    this.reject?.(error);
  }

  forwardTo(target: { kill(signal: StopSignal): boolean }): void {
    this.target = target;
    if (this.pending !== undefined) target.kill(this.pending);
  }

  /** Ends `stopOrWake` (the session was lost). */
  wakeUp(): void {
    this.woken = true;
    this.wake?.();
  }

  /** Resolves at the first SIGINT/SIGTERM or `wakeUp`. */
  stopOrWake(): Promise<void> {
    if (this.woken) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.wake = resolve;
    });
  }

  close(): void {
    process.off("SIGINT", this.onInterrupt);
    process.off("SIGTERM", this.onTerminate);
  }
}
