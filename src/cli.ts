#!/usr/bin/env -S node --max-semi-space-size=1 --v8-pool-size=1
// The `vigie` command line. This file only declares commands and flags; each command's work lives in
// src/commands/<area>.ts, loaded on demand so that `vigie get` does not pay for the agent's start-up.
// The shebang holds the node and V8 settings that only take effect when the process starts (README, "Memory"). The
// others are set at run time by applyRuntimeV8Flags below, so they also apply when node runs dist/cli.js directly:
// - a 1 MiB young generation instead of V8's up to 3 x 16 MiB, sized for throughput-hungry servers: that default
//   was a third of an idle agent's resident memory; the price is more frequent, shorter scavenges;
// - one thread for V8's background work (compiling, marking, sweeping) instead of node's four: on the machines
//   vigie runs on, beside an app, more threads only compete for the same cores, and each keeps a stack and a
//   malloc arena resident (~0.6 MB).
// Measured and left out (README, "Memory"): --single-threaded and --optimize-for-size saved ~1.5 MB more on a
// leader with 10,000 keys, but put and watch latency p99 grew by a third or more.
// `env -S` execs node in place: the pid a supervisor holds is node's own and signals reach vigie directly.
import { Command, Option } from "commander";
import {
  type AgentFlags,
  type ClientOptions,
  parseDuration,
  parseEndpoints,
  parseWholeNumber,
} from "./commands/options.js";
import { describeFailure, EXIT_USAGE, UsageError } from "./errors.js";
import { LOG_LEVELS, type LogLevel } from "./log.js";
import { applyRuntimeV8Flags } from "./v8-settings.js";

applyRuntimeV8Flags();

const DEFAULT_ENDPOINT = "http://127.0.0.1:2379";

interface GlobalClientFlags {
  endpoints: string[];
  writeOut: ClientOptions["writeOut"];
  commandTimeout: number;
}

function clientOptions(command: Command): ClientOptions {
  const flags = command.optsWithGlobals<GlobalClientFlags>();
  return { endpoints: flags.endpoints, writeOut: flags.writeOut, timeoutMs: flags.commandTimeout };
}

/** Runs a command's work and turns its outcome (exit code or typed error) into the process exit code. */
async function execute(work: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await work();
  } catch (error) {
    reportFailure(error);
  }
}

/** Prints a failure, one `vigie:`-prefixed line per problem (a config can have several), and sets the exit code. */
function reportFailure(error: unknown): void {
  const failure = describeFailure(error);
  const lines = failure.message.split("\n").map((line) => `vigie: ${line}\n`);
  process.stderr.write(lines.join(""));
  process.exitCode = failure.exitCode;
}

/**
 * etcd's flags that vigie names differently: its users type them from habit. vigie takes one URL per role, and
 * advertises the URL it listens on unless told another.
 */
const ETCD_FLAG_HINTS: Readonly<Record<string, string>> = {
  "listen-client-urls": "vigie's flag is --listen-client URL (one URL, advertised unless --advertise-client is given)",
  "advertise-client-urls": "vigie's flag is --advertise-client URL (one URL)",
  "listen-peer-urls": "vigie's flag is --listen-peer URL (one URL, advertised unless --advertise-peer is given)",
  "initial-advertise-peer-urls": "vigie's flag is --advertise-peer URL (one URL)",
  "initial-cluster-state": "a new cluster starts with --initial-cluster; join a running one with --join CLIENT_URL",
};

/**
 * Adds a hint to commander's "unknown option" error for an etcd flag name, or for a long flag written with one dash
 * as Go's flag package allows (`-name`).
 */
function withEtcdFlagHint(text: string, known: (flag: string) => boolean): string {
  const flag = /unknown option '(-{1,2})([A-Za-z][\w-]*)'/.exec(text);
  if (flag === null) return text;
  const [, dashes, name] = flag as unknown as [string, string, string];
  const hint = ETCD_FLAG_HINTS[name] ?? (dashes === "-" && known(`--${name}`) ? `did you mean --${name}?` : undefined);
  return hint === undefined ? text : `${text.trimEnd()}\n(${hint})\n`;
}

export function buildProgram(): Command {
  const program = new Command("vigie")
    .description(
      "Service-discovery sidecar: an embedded etcd-compatible store, templates rendered safely, apps reloaded",
    )
    .version("0.1.0")
    .showHelpAfterError("(run with --help for usage)")
    // Set before the subcommands are added, which inherit it.
    .configureOutput({
      outputError: (text, write) =>
        write(withEtcdFlagHint(text, (flag) => program.commands.some((c) => c.options.some((o) => o.long === flag)))),
    })
    .addHelpText(
      "after",
      [
        "",
        "Exit codes: 0 done; 1 the store refused the request (its error is printed) or a render failed;",
        "2 bad usage; 3 invalid config; 4 no endpoint could be reached (or a write's fate is unknown);",
        "130/143 watch or lease keep-alive stopped by SIGINT/SIGTERM (killed by it, like etcdctl);",
        "lock with a COMMAND: the command's own status;",
        "141 stdout was closed by its reader.",
      ].join("\n"),
    )
    // Usage errors exit 2 (like most Unix tools), so scripts can tell them from a failed request (1).
    .exitOverride((error) => {
      process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);
    })
    .addOption(
      new Option("--endpoints <urls>", "comma-separated client URLs of any cluster members (vigie or etcd)")
        .default([DEFAULT_ENDPOINT], DEFAULT_ENDPOINT)
        .argParser(parseEndpoints),
    )
    .addOption(
      new Option("-w, --write-out <format>", "output format (simple: etcdctl's name for the default)")
        .choices(["table", "json", "simple"])
        .default("table"),
    )
    .addOption(
      new Option("--command-timeout <duration>", "timeout of each request to the store (like 5s, 1m, 500ms)")
        .default(5_000, "5s")
        .argParser(parseDuration("--command-timeout")),
    );

  program
    .command("agent")
    .description("run the sidecar: embedded replica (or --store-endpoints), templates, reloads, service registration")
    .option("--config <file>", "YAML config file (templates, services, exec, and any flag below in snake_case)")
    .option("--name <name>", "this member's name in the cluster (default: the host name)")
    .option("--data-dir <dir>", "where the replica keeps its write-ahead log and snapshots (default: <name>.vigie)")
    .option("--listen-client <url>", "client API (etcd v3 JSON) URL (default http://127.0.0.1:2379)")
    .option("--listen-peer <url>", "peer (Raft) URL (default http://127.0.0.1:2380)")
    .option("--advertise-client <url>", "client URL told to other members and tools (default: --listen-client)")
    .option("--advertise-peer <url>", "peer URL the other members reach this one at (default: --listen-peer)")
    .option("--initial-cluster <list>", "static bootstrap: name=peerURL,name=peerURL,...")
    .option("--join <clientURL>", "join a running cluster as a learner through any member's client URL")
    .option("--voters <n>", "how many voting members the cluster should have (1-7)", parseWholeNumber("--voters"))
    .option("--store-endpoints <urls>", "client role: no local replica, use this vigie or etcd cluster")
    .option("--dev", "single node; its data in a temporary directory removed on exit (unless --data-dir is given)")
    .addOption(new Option("--log-level <level>", "log level").choices(LOG_LEVELS))
    .action(async (flags: AgentFlags) => {
      const { runAgent } = await import("./commands/agent.js");
      await execute(() => runAgent(flags));
    });

  program
    .command("render")
    .description("render every template once from the store and exit (non-zero on any failure)")
    .option("--config <file>", "YAML config file", "vigie.yaml")
    .option("--once", "render once and exit (the only mode of this command; the agent keeps files current)")
    .option("--dry", "print the rendered files to stdout instead of writing them")
    .addOption(new Option("--log-level <level>", "log level").choices(LOG_LEVELS).default("warn"))
    .action(async (flags: { config: string; once?: boolean; dry?: boolean; logLevel: LogLevel }, command: Command) => {
      await execute(async () => {
        const { loadConfig } = await import("./config/load.js");
        const { storeEndpointsOf } = await import("./config/defaults.js");
        const loaded = await loadConfig(flags.config);
        const { createLogger } = await import("./log.js");
        const { runRender } = await import("./commands/render.js");
        const globals = command.optsWithGlobals<GlobalClientFlags>();
        const endpointsGiven = command.parent?.getOptionValueSource("endpoints") === "cli";
        const endpoints = endpointsGiven ? globals.endpoints : storeEndpointsOf(loaded.config);
        return await runRender({
          config: loaded.config,
          baseDir: loaded.baseDir,
          endpoints,
          once: true,
          dry: flags.dry === true,
          logger: createLogger({ level: flags.logLevel }),
        });
      });
    });

  program
    .command("get <key>")
    .description("read a key (or every key under a prefix)")
    .option("--prefix", "read every key that starts with KEY")
    .option("--keys-only", "print keys without values")
    .option("--print-value-only", "print values without keys (etcdctl's flag, for scripts)")
    .option("--limit <n>", "at most this many keys (0: no limit)", parseWholeNumber("--limit", 0))
    .option("--rev <n>", "read at this revision (0: the latest)", parseWholeNumber("--rev", 0))
    .addOption(
      new Option("--consistency <mode>", "l (linearizable) or s (serializable, served by the local member)")
        .choices(["l", "s"])
        .default("l"),
    )
    .action(
      async (
        key: string,
        flags: {
          prefix?: boolean;
          keysOnly?: boolean;
          printValueOnly?: boolean;
          limit?: number;
          rev?: number;
          consistency: string;
        },
        command: Command,
      ) => {
        const { runGet } = await import("./commands/kv.js");
        await execute(() =>
          runGet(key, {
            ...clientOptions(command),
            prefix: flags.prefix === true,
            keysOnly: flags.keysOnly === true,
            valueOnly: flags.printValueOnly === true,
            limit: flags.limit,
            rev: flags.rev,
            serializable: flags.consistency === "s",
          }),
        );
      },
    );

  program
    .command("put <key> [value]")
    .description("write a value (read from standard input when VALUE is not given, like etcdctl)")
    .option("--lease <id>", "attach the key to this lease (hex ID, as printed by `vigie lease grant`)")
    .option("--prev-kv", "print the previous value")
    .option("--ignore-value", "keep the key's current value (the key must exist; give no VALUE)")
    .option("--ignore-lease", "keep the key's current lease (the key must exist)")
    .action(
      async (
        key: string,
        value: string | undefined,
        flags: { lease?: string; prevKv?: boolean; ignoreValue?: boolean; ignoreLease?: boolean },
        command: Command,
      ) => {
        const { runPut } = await import("./commands/kv.js");
        await execute(() =>
          runPut(key, value, {
            ...clientOptions(command),
            lease: flags.lease,
            prevKv: flags.prevKv === true,
            ignoreValue: flags.ignoreValue === true,
            ignoreLease: flags.ignoreLease === true,
          }),
        );
      },
    );

  program
    .command("del <key>")
    .description("delete a key (or every key under a prefix)")
    .option("--prefix", "delete every key that starts with KEY")
    .option("--prev-kv", "print the deleted values")
    .action(async (key: string, flags: { prefix?: boolean; prevKv?: boolean }, command: Command) => {
      const { runDel } = await import("./commands/kv.js");
      await execute(() =>
        runDel(key, { ...clientOptions(command), prefix: flags.prefix === true, prevKv: flags.prevKv === true }),
      );
    });

  program
    .command("watch <key>")
    .description("print changes to a key (or prefix) as they happen, until interrupted")
    .option("--prefix", "watch every key that starts with KEY")
    .option("--rev <n>", "start from this revision (replays history)", parseWholeNumber("--rev", 0))
    .option("--prev-kv", "print the previous value with each event")
    .action(async (key: string, flags: { prefix?: boolean; rev?: number; prevKv?: boolean }, command: Command) => {
      const { runWatch } = await import("./commands/kv.js");
      await execute(() =>
        runWatch(key, {
          ...clientOptions(command),
          prefix: flags.prefix === true,
          rev: flags.rev,
          prevKv: flags.prevKv === true,
        }),
      );
    });

  program
    .command("lock <name> [command...]")
    .description(
      "take the lock NAME (etcdctl's lock: the two exclude each other) and hold it until interrupted, or run " +
        "COMMAND holding it (put -- before a command with options)",
    )
    .option(
      "--ttl <seconds>",
      "the lock's lease: a holder that dies frees the lock after this",
      parseWholeNumber("--ttl", 1),
      10,
    )
    .action(async (name: string, commandLine: string[], flags: { ttl: number }, command: Command) => {
      const { runLock } = await import("./commands/lock.js");
      await execute(() => runLock(name, commandLine, { ...clientOptions(command), ttlSeconds: flags.ttl }));
    });

  const lease = program.command("lease").description("grant, revoke, keep alive, inspect or list leases");
  lease
    .command("grant <ttl>")
    .description("grant a lease of TTL seconds; prints its ID")
    .action(async (ttl: string, _flags: unknown, command: Command) => {
      const { runLease } = await import("./commands/lease.js");
      await execute(() => runLease("grant", ttl, clientOptions(command)));
    });
  lease
    .command("revoke <id>")
    .description("revoke a lease and delete its keys")
    .action(async (id: string, _flags: unknown, command: Command) => {
      const { runLease } = await import("./commands/lease.js");
      await execute(() => runLease("revoke", id, clientOptions(command)));
    });
  lease
    .command("keepalive <id>")
    .alias("keep-alive") // etcdctl's spelling
    .description("keep a lease alive until interrupted")
    .action(async (id: string, _flags: unknown, command: Command) => {
      const { runLease } = await import("./commands/lease.js");
      await execute(() => runLease("keepalive", id, clientOptions(command)));
    });

  lease
    .command("timetolive <id>")
    .description("print a lease's granted and remaining TTL (and its keys with --keys)")
    .option("--keys", "also list the keys attached to the lease")
    .action(async (id: string, flags: { keys?: boolean }, command: Command) => {
      const { runLeaseTimeToLive } = await import("./commands/lease.js");
      await execute(() => runLeaseTimeToLive(id, flags.keys === true, clientOptions(command)));
    });
  lease
    .command("list")
    .description("list the IDs of all live leases")
    .action(async (_flags: unknown, command: Command) => {
      const { runLeaseList } = await import("./commands/lease.js");
      await execute(() => runLeaseList(clientOptions(command)));
    });

  const member = program.command("member").description("list, add, remove, promote or update cluster members");
  member
    .command("list")
    .description("list the members")
    .action(async (_flags: unknown, command: Command) => {
      const { runMember } = await import("./commands/cluster.js");
      await execute(() => runMember("list", [], { ...clientOptions(command), learner: false }));
    });
  member
    .command("add <name> [peerURLs]")
    .description("add a member (as a learner with --learner); peer URLs comma-separated, or with --peer-urls")
    .option("--peer-urls <urls>", "the new member's peer URLs, comma-separated (etcdctl's flag)")
    .option("--learner", "add as a non-voting learner")
    .action(
      async (
        name: string,
        peerUrls: string | undefined,
        flags: { learner?: boolean; peerUrls?: string },
        command: Command,
      ) => {
        const { runMember } = await import("./commands/cluster.js");
        await execute(async () => {
          if (peerUrls !== undefined && flags.peerUrls !== undefined && peerUrls !== flags.peerUrls) {
            throw new UsageError("member add: give the peer URLs once, as an argument or with --peer-urls");
          }
          const urls = peerUrls ?? flags.peerUrls;
          if (urls === undefined) throw new UsageError("member add needs the new member's peer URLs (--peer-urls)");
          return await runMember("add", [name, urls], { ...clientOptions(command), learner: flags.learner === true });
        });
      },
    );
  member
    .command("remove <id>")
    .description("remove a member by ID (hex, as `member list` prints it)")
    .action(async (id: string, _flags: unknown, command: Command) => {
      const { runMember } = await import("./commands/cluster.js");
      await execute(() => runMember("remove", [id], { ...clientOptions(command), learner: false }));
    });
  member
    .command("update <id> [peerURLs]")
    .description("give a member new peer URLs, comma-separated, or with --peer-urls (the others reach it there)")
    .option("--peer-urls <urls>", "the member's new peer URLs, comma-separated (etcdctl's flag)")
    .action(async (id: string, peerUrls: string | undefined, flags: { peerUrls?: string }, command: Command) => {
      const { runMember } = await import("./commands/cluster.js");
      await execute(async () => {
        if (peerUrls !== undefined && flags.peerUrls !== undefined && peerUrls !== flags.peerUrls) {
          throw new UsageError("member update: give the peer URLs once, as an argument or with --peer-urls");
        }
        const urls = peerUrls ?? flags.peerUrls;
        if (urls === undefined) throw new UsageError("member update needs the member's new peer URLs (--peer-urls)");
        return await runMember("update", [id, urls], { ...clientOptions(command), learner: false });
      });
    });
  member
    .command("promote <id>")
    .description("promote a caught-up learner to voter")
    .action(async (id: string, _flags: unknown, command: Command) => {
      const { runMember } = await import("./commands/cluster.js");
      await execute(() => runMember("promote", [id], { ...clientOptions(command), learner: false }));
    });

  program
    .command("status")
    .description("one row per member: name, role, leader?, term, applied index, revision")
    .action(async (_flags: unknown, command: Command) => {
      const { runStatus } = await import("./commands/cluster.js");
      await execute(() => runStatus(clientOptions(command)));
    });

  program
    .command("txn")
    .description(
      "one atomic transaction from standard input, in etcdctl's format: compares, blank line, requests " +
        "if they hold, blank line, requests otherwise",
    )
    .option("-i, --interactive", "prompt for each section, as etcdctl txn -i does (and read from a terminal)")
    .action(async (flags: { interactive?: boolean }, command: Command) => {
      const { runTxn } = await import("./commands/txn.js");
      await execute(() => runTxn({ ...clientOptions(command), interactive: flags.interactive === true }));
    });

  program
    .command("backup <file>")
    .description("write every key and value (at one revision; leased keys left out) to FILE, checksummed")
    .action(async (file: string, _flags: unknown, command: Command) => {
      const { runBackup } = await import("./commands/backup.js");
      await execute(() => runBackup(file, clientOptions(command)));
    });

  program
    .command("restore <file>")
    .description("write the keys of a `vigie backup` FILE into the cluster (the file is checked first)")
    .action(async (file: string, _flags: unknown, command: Command) => {
      const { runRestore } = await import("./commands/backup.js");
      await execute(() => runRestore(file, clientOptions(command)));
    });

  program
    .command("services [name]")
    .description("list registered service instances (healthy ones; --all for every one)")
    .option("--all", "include instances whose health check fails")
    .action(async (name: string | undefined, flags: { all?: boolean }, command: Command) => {
      const { runServices } = await import("./commands/services.js");
      await execute(() => runServices(name, { ...clientOptions(command), all: flags.all === true }));
    });

  return program;
}

// `vigie get --prefix | head`: once the reader is gone, stop quietly with 141, the status a shell reports for a
// program killed by SIGPIPE (etcdctl's fate). Node ignores SIGPIPE, so the write fails with EPIPE instead, which
// unhandled was a crash with a stack trace.
const EXIT_BROKEN_PIPE = 128 + 13;
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  process.exit(EXIT_BROKEN_PIPE);
});

await buildProgram().parseAsync(process.argv).catch(reportFailure);
