// `vigie lease grant TTL | revoke ID | keepalive ID | timetolive ID | list`. IDs are printed and read in hex, and
// every line and JSON shape is etcdctl 3.4's.
import { EXIT_FAILURE, EXIT_OK, UsageError } from "../errors.js";
import type { ClientOptions } from "./options.js";
import {
  dieOfSignal,
  headerJson,
  hexToId,
  idToHex,
  leaseJson,
  printLine,
  rawNumber,
  toJson,
  withStore,
} from "./output.js";

/** Largest TTL etcd accepts (seconds). */
export const MAX_TTL_SECONDS = 9_000_000_000;

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
  // Once the TTL is known, a member that does not answer a renewal within a third of it is left for the next one:
  // waiting the whole --command-timeout (5 s) on a stopped member let a short lease expire meanwhile. And the next
  // renewal starts at the member that answered, so a stopped member ahead of it costs nothing more.
  let endpoints = options.endpoints;
  let renewalTimeoutMs = options.timeoutMs;
  try {
    while (!stopped) {
      let answeredBy = endpoints[0];
      const result = await withStore({ ...options, endpoints, timeoutMs: renewalTimeoutMs }, (client, endpoint) => {
        answeredBy = endpoint;
        return client.leaseKeepAliveOnce(id);
      });
      endpoints = [
        ...endpoints.filter((endpoint) => endpoint === answeredBy),
        ...endpoints.filter((endpoint) => endpoint !== answeredBy),
      ];
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
      renewalTimeoutMs = Math.min(options.timeoutMs, waitMs);
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

/** `lease timetolive ID [--keys]`: remaining and granted TTL (and the attached keys), or "already expired". */
export async function runLeaseTimeToLive(idText: string, withKeys: boolean, options: ClientOptions): Promise<number> {
  const id = hexToId(idText, "lease timetolive", "lease");
  const result = await withStore(options, (client) => client.leaseTimeToLive(id, withKeys));
  if (options.writeOut === "json") {
    printLine(
      toJson({
        ...headerJson(result.header),
        id: rawNumber(result.id),
        ttl: result.ttlSeconds,
        "granted-ttl": result.grantedTtlSeconds,
        keys: result.keys.length === 0 ? null : result.keys.map((key) => key.toString("base64")),
      }),
    );
    return EXIT_OK;
  }
  if (result.ttlSeconds === -1) {
    printLine(`lease ${idToHex(id)} already expired`);
    return EXIT_OK;
  }
  const line = `lease ${idToHex(id)} granted with TTL(${result.grantedTtlSeconds}s), remaining(${result.ttlSeconds}s)`;
  if (!withKeys) {
    printLine(line);
    return EXIT_OK;
  }
  // Keys are bytes: written as stored, space-separated inside brackets like etcdctl's.
  const keys = result.keys.flatMap((key, index) => (index === 0 ? [key] : [Buffer.from(" "), key]));
  process.stdout.write(Buffer.concat([Buffer.from(`${line}, attached keys([`), ...keys, Buffer.from("])\n")]));
  return EXIT_OK;
}

/** `lease list`: every live lease's ID. */
export async function runLeaseList(options: ClientOptions): Promise<number> {
  const result = await withStore(options, (client) => client.leaseLeases());
  if (options.writeOut === "json") {
    printLine(toJson({ ...headerJson(result.header), leases: result.ids.map((id) => ({ id: rawNumber(id) })) }));
    return EXIT_OK;
  }
  printLine(`found ${result.ids.length} leases`);
  for (const id of result.ids) printLine(idToHex(id));
  return EXIT_OK;
}
