// Expected errors: each class has a stable `code` that users, scripts and tests can match on.
// Programmer errors are not here: they are `node:assert` failures and crash on purpose.

/** Exit codes used by the CLI; one place decides them (see `exitCodeFor`). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_CONFIG = 3;
export const EXIT_UNAVAILABLE = 4;

export class VigieError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = options?.exitCode ?? EXIT_FAILURE;
  }
}

/** The config file (or a flag) is invalid. The message names the file, line and field path. */
export class ConfigError extends VigieError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("VIGIE_ERR_CONFIG", message, { ...options, exitCode: EXIT_CONFIG });
  }
}

/** A command-line usage problem (unknown flag value, missing argument). */
export class UsageError extends VigieError {
  constructor(message: string) {
    super("VIGIE_ERR_USAGE", message, { exitCode: EXIT_USAGE });
  }
}

/** A subcommand exists in the CLI but its capability has not been built yet. */
export class NotAvailableError extends VigieError {
  constructor(what: string) {
    super("VIGIE_ERR_NOT_AVAILABLE", `${what}: not available yet`, { exitCode: EXIT_FAILURE });
  }
}

/** The store (embedded replica, vigie cluster or etcd) could not be reached or answered with an error. */
export class StoreUnavailableError extends VigieError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("VIGIE_ERR_STORE_UNAVAILABLE", message, { ...options, exitCode: EXIT_UNAVAILABLE });
  }
}

/** Maps any thrown value to the exit code and the one-line message the CLI prints. */
export function describeFailure(error: unknown): { exitCode: number; message: string } {
  if (error instanceof VigieError) return { exitCode: error.exitCode, message: error.message };
  if (error instanceof Error) return { exitCode: EXIT_FAILURE, message: error.stack ?? error.message };
  return { exitCode: EXIT_FAILURE, message: String(error) };
}
