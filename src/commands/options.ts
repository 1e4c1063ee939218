// Option types shared by the CLI (src/cli.ts) and the command modules, so each command's signature is explicit,
// and the parsers of the client flags: they accept what etcdctl 3.4 accepts and refuse the rest naming the flag.
import { InvalidArgumentError } from "commander";
import type { LogLevel } from "../log.js";
import { parseDurationMs } from "../units.js";

/** Options every client command takes: which cluster, and how to print. */
export interface ClientOptions {
  endpoints: string[];
  /**
   * `table` for people (default), `json` for scripts. `simple` is etcdctl's default name: the same lines as the
   * default for key-value commands, and etcdctl's comma-separated lines for `member list`.
   */
  writeOut: "simple" | "table" | "json";
  /** Per-request timeout. */
  timeoutMs: number;
}

export interface GetOptions extends ClientOptions {
  prefix: boolean;
  keysOnly: boolean;
  /** Simple output: the values alone, one per line. */
  valueOnly: boolean;
  limit: number | undefined;
  rev: number | undefined;
  serializable: boolean;
}

export interface PutOptions extends ClientOptions {
  lease: string | undefined;
  prevKv: boolean;
  ignoreValue: boolean;
  ignoreLease: boolean;
}

export interface DelOptions extends ClientOptions {
  prefix: boolean;
  prevKv: boolean;
}

export interface WatchOptions extends ClientOptions {
  prefix: boolean;
  rev: number | undefined;
  prevKv: boolean;
}

export interface AgentFlags {
  config: string | undefined;
  logLevel: LogLevel | undefined;
  name: string | undefined;
  dataDir: string | undefined;
  listenClient: string | undefined;
  listenPeer: string | undefined;
  advertiseClient: string | undefined;
  advertisePeer: string | undefined;
  initialCluster: string | undefined;
  join: string | undefined;
  voters: number | undefined;
  storeEndpoints: string | undefined;
  dev: boolean | undefined;
}

/** A whole-number flag; `min` when negative values make no sense. Refuses what a JS number cannot hold exactly. */
export function parseWholeNumber(flag: string, min?: number) {
  return (text: string): number => {
    if (!/^-?\d+$/.test(text)) throw new InvalidArgumentError(`${flag} expects a whole number, got "${text}"`);
    const value = Number(text);
    if (min !== undefined && value < min) {
      throw new InvalidArgumentError(`${flag} expects a whole number of at least ${min}, got "${text}"`);
    }
    if (!Number.isSafeInteger(value)) {
      throw new InvalidArgumentError(
        `${flag} expects a whole number of at most ${Number.MAX_SAFE_INTEGER}, got "${text}"`,
      );
    }
    return value;
  };
}

/**
 * A Go-style duration as etcdctl's flags take them (`5s`, `1m30s`, `1.5s`, `500ms`) -> whole milliseconds > 0; the
 * config file's parser, with the flag named in the refusal.
 */
export function parseDuration(flag: string) {
  return (text: string): number => {
    let wholeMs: number;
    try {
      wholeMs = parseDurationMs(text);
    } catch {
      throw new InvalidArgumentError(`${flag} expects a duration like 5s, 1m or 500ms, got "${text}"`);
    }
    if (wholeMs < 1) throw new InvalidArgumentError(`${flag} expects a duration above 0 like 5s, got "${text}"`);
    return wholeMs;
  };
}

/** `--endpoints`: comma-separated URLs; a bare `host:port` (etcdctl's own default form) means http://host:port. */
export function parseEndpoints(text: string): string[] {
  const endpoints = text
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "")
    .map((part) => (/^([^/\s:[\]]+|\[[0-9a-fA-F:.]+\]):\d+$/.test(part) ? `http://${part}` : part));
  for (const endpoint of endpoints) {
    if (!/^https?:\/\/[^/\s]+\/?$/.test(endpoint)) {
      throw new InvalidArgumentError(`"${endpoint}" is not an endpoint URL like http://127.0.0.1:2379`);
    }
  }
  if (endpoints.length === 0) throw new InvalidArgumentError("needs at least one URL");
  return endpoints;
}
