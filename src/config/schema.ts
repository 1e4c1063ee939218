// The shape of vigie's YAML config (and of the flags that override it), as zod schemas.
// Parsing here turns human units into numbers (durations → ms, modes → octal ints, signals → canonical names),
// so the rest of the program never sees a raw string it would have to re-validate.
import { z } from "zod";
import { LOG_LEVELS } from "../log.js";
import { parseDurationMs, parseFileMode, parseSignalName } from "../units.js";
import { DEFAULT_LISTEN_PEER, DEFAULT_VOTERS, MAX_VOTERS } from "./defaults.js";

/** Wraps a unit parser so that its error message becomes a zod issue at the field's path. */
function parsed<T>(parse: (text: string) => T) {
  return z.string().transform((text, ctx): T => {
    try {
      return parse(text);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: (error as Error).message });
      return z.NEVER;
    }
  });
}

/**
 * The longest duration a setting may have: node's timers hold at most 2^31-1 ms (24.8 days) and fire after 1 ms
 * when asked for more, so `interval: 1000h` would have run a health check every millisecond. 596h is under it.
 */
const DURATION_MAX_MS = 596 * 3_600_000;

/** Durations carry a unit (`250ms`, `10s`); a bare number is ambiguous, so only `0` is accepted without one. */
const durationMs = z.union([z.string(), z.number()]).transform((value, ctx): number => {
  if (value === 0) return 0;
  try {
    if (typeof value === "number") throw new Error(`duration ${value} needs a unit (ms, s, m or h), like "${value}s"`);
    const ms = parseDurationMs(value);
    if (ms > DURATION_MAX_MS) throw new Error(`duration "${value}" is too long: at most 596h`);
    return ms;
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});
const signal = parsed(parseSignalName);
const argv = z.array(z.string().min(1)).min(1, "must name a program (argv array, first element is the program)");
const url = z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" });
const urlList = z.union([z.array(url).min(1), parsed((text) => splitList(text))]).pipe(z.array(url).min(1));

function splitList(text: string): string[] {
  return text
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
}

/** How to tell the application that its files changed. Exactly one way per template. */
export const reloadSchema = z.union([
  z.strictObject({
    signal,
    pidfile: z.string().min(1),
    /** When set, the pidfile's process must also match this command-line substring. */
    process: z.string().min(1).optional(),
  }),
  z.strictObject({ signal, process: z.string().min(1) }),
  z.strictObject({ signal: signal.optional(), exec: z.literal(true) }),
  z.strictObject({ command: argv, timeout: durationMs.default(10_000) }),
]);

export const templateSchema = z.strictObject({
  /** Name used in logs and metrics; defaults to the source file's base name. */
  name: z.string().min(1).optional(),
  source: z.string().min(1),
  destination: z.string().min(1),
  mode: parsed(parseFileMode).optional(),
  owner: z.union([z.string().min(1), z.number().int().nonnegative()]).optional(),
  group: z.union([z.string().min(1), z.number().int().nonnegative()]).optional(),
  check: argv.optional(),
  /** How long `check` may run before it is killed and the new file refused. */
  check_timeout: durationMs.default(30_000),
  reload: reloadSchema.optional(),
  wait: z.strictObject({ min: durationMs.default(0), max: durationMs.default(0) }).optional(),
  /** Keep the previous file as `<destination>.bak` on every change. */
  backup: z.boolean().default(false),
  /** `rename` (atomic, default) or `in-place` (for single-file bind mounts, where a rename would break the mount). */
  write: z.enum(["rename", "in-place"]).default("rename"),
});

export const healthCheckSchema = z
  .strictObject({
    http: url.optional(),
    tcp: z.string().min(1).optional(),
    exec: argv.optional(),
    interval: durationMs.default(1000),
    timeout: durationMs.default(1000),
    healthy_threshold: z.number().int().min(1).max(100).default(1),
    unhealthy_threshold: z.number().int().min(1).max(100).default(1),
  })
  .refine((check) => [check.http, check.tcp, check.exec].filter((kind) => kind !== undefined).length === 1, {
    message: "needs exactly one of http, tcp or exec",
  });

export const serviceSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "must be letters, digits, '.', '_' or '-'"),
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "must be letters, digits, '.', '_' or '-'")
    .optional(),
  /** `host:port` (IPv6 as `[::1]:8080`). */
  address: z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'must be "host:port"'),
  tags: z.array(z.string()).default([]),
  meta: z.record(z.string(), z.string()).default({}),
  check: healthCheckSchema.optional(),
  ttl: durationMs.default(10_000),
});

export const execSchema = z.strictObject({
  command: argv,
  reload_signal: signal.default("SIGHUP"),
  /** Restart the application when it exits on its own (with backoff). */
  restart: z.boolean().default(true),
});

/** The whole config file. Agent settings carry the same names as the flags, in snake_case. */
export const configSchema = z.strictObject({
  name: z.string().min(1).optional(),
  data_dir: z.string().min(1).optional(),
  /** Unset = the default (`DEFAULT_LISTEN_CLIENT`); kept unset so the client role knows it was not asked to listen. */
  listen_client: url.optional(),
  listen_peer: url.default(DEFAULT_LISTEN_PEER),
  /** The client URL other members and tools are told (unset: the `listen_client` URL). */
  advertise_client: url.optional(),
  /** The peer URL other members reach this one at (unset: the `listen_peer` URL). */
  advertise_peer: url.optional(),
  /** `name=peerURL,name=peerURL` (a string, like etcd's flag) or a map of name → peer URL. */
  initial_cluster: z.union([z.string().min(1), z.record(z.string(), url)]).optional(),
  join: url.optional(),
  voters: z.number().int().min(1).max(MAX_VOTERS).default(DEFAULT_VOTERS),
  store_endpoints: urlList.optional(),
  dev: z.boolean().default(false),
  log_level: z.enum(LOG_LEVELS).default("info"),
  templates: z.array(templateSchema).default([]),
  services: z.array(serviceSchema).default([]),
  exec: execSchema.optional(),
});

export type VigieConfig = z.output<typeof configSchema>;
export type TemplateConfig = z.output<typeof templateSchema>;
export type ReloadConfig = z.output<typeof reloadSchema>;
export type ServiceConfig = z.output<typeof serviceSchema>;
export type HealthCheckConfig = z.output<typeof healthCheckSchema>;
export type ExecConfig = z.output<typeof execSchema>;
