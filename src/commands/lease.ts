// `vigie lease grant TTL | revoke ID | keepalive ID`. IDs are printed and read in hex, like etcdctl.
import { EXIT_FAILURE, EXIT_OK, UsageError } from "../errors.js";
import type { ClientOptions } from "./options.js";
import { dieOfSignal, headerJson, hexToId, idToHex, leaseJson, printLine, toJson, withStore } from "./output.js";

/** Largest TTL etcd accepts (seconds). */
const MAX_TTL_SECONDS = 9_000_000_000;

function parseTtl(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > MAX_TTL_SECONDS) {
    throw new UsageError(`lease grant expects a TTL in whole seconds (1-${MAX_TTL_SECONDS}), got "${text}"`);
  }
  return Number(text);
}

export async function runLease(
  action: "grant" | "revoke" | "keepalive",
  argument: string,
  options: ClientOptions,
): Promise<number> {
  if (action === "grant") return await grant(parseTtl(argument), options);
  const id = hexToId(argument, `lease ${action}`, "lease");
  if (action === "revoke") return await revoke(id, options);
  return await keepAlive(id, options);
}

async function grant(ttlSeconds: number, options: ClientOptions): Promise<number> {
  const result = await withStore(options, (client) => client.leaseGrant(ttlSeconds));
  if (options.writeOut === "json") {
    printLine(toJson(leaseJson(result.header, result.id, result.ttlSeconds)));
  } else {
    printLine(`lease ${idToHex(result.id)} granted with TTL(${result.ttlSeconds}s)`);
  }
  return EXIT_OK;
}

async function revoke(id: string, options: ClientOptions): Promise<number> {
  const header = await withStore(options, (client) => client.leaseRevoke(id));
  if (options.writeOut === "json") printLine(toJson({ header: headerJson(header) }));
  else printLine(`lease ${idToHex(id)} revoked`);
  return EXIT_OK;
}

/**
 * Renews the lease every third of its TTL until SIGINT/SIGTERM (then dies of that signal, like etcdctl), or until
 * the store says it is gone (TTL 0: expired or revoked; exit 1).
 */
async function keepAlive(id: string, options: ClientOptions): Promise<number> {
  let stopped: "SIGINT" | "SIGTERM" | undefined;
  let wake: (() => void) | undefined;
  const stop = (signal: "SIGINT" | "SIGTERM") => {
    stopped = signal;
    wake?.();
  };
  const onInterrupt = () => stop("SIGINT");
  const onTerminate = () => stop("SIGTERM");
  process.once("SIGINT", onInterrupt);
  process.once("SIGTERM", onTerminate);
  let outcome = EXIT_OK;
  try {
    while (!stopped) {
      const result = await withStore(options, (client) => client.leaseKeepAliveOnce(id));
      if (result.ttlSeconds <= 0) {
        process.stderr.write(`vigie: lease ${idToHex(id)} expired or revoked\n`);
        outcome = EXIT_FAILURE;
        break;
      }
      if (options.writeOut === "json") {
        printLine(toJson(leaseJson(result.header, result.id, result.ttlSeconds)));
      } else {
        printLine(`lease ${idToHex(id)} keepalived with TTL(${result.ttlSeconds})`);
      }
      const waitMs = Math.max(500, (result.ttlSeconds * 1000) / 3);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } catch (error) {
    if (stopped === undefined) throw error;
  } finally {
    process.off("SIGINT", onInterrupt);
    process.off("SIGTERM", onTerminate);
  }
  return stopped === undefined ? outcome : dieOfSignal(stopped);
}
