// Option types shared by the CLI (src/cli.ts) and the command modules, so each command's signature is explicit.
import type { LogLevel } from "../log.js";

/** Options every client command takes: which cluster, and how to print. */
export interface ClientOptions {
  endpoints: string[];
  /** `table` for people (default), `json` for scripts. */
  writeOut: "table" | "json";
  /** Per-request timeout. */
  timeoutMs: number;
}

export interface GetOptions extends ClientOptions {
  prefix: boolean;
  keysOnly: boolean;
  limit: number | undefined;
  rev: number | undefined;
  serializable: boolean;
}

export interface PutOptions extends ClientOptions {
  lease: string | undefined;
  prevKv: boolean;
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
  initialCluster: string | undefined;
  join: string | undefined;
  voters: number | undefined;
  storeEndpoints: string | undefined;
  dev: boolean | undefined;
}
