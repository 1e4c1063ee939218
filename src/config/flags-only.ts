// A config given by flags alone (no config file), checked without zod. That is how store-only members are usually
// started, and for them zod's schemas were the largest library in memory: ~3 MB of heap (~5 MB resident) held for
// the agent's whole life to validate a dozen flags once.
// This is a fast path, not a second schema: it accepts only values it checks exactly as `configSchema` would and
// produces the same result; anything else (a bad value, a type the command line never gives, an unknown field)
// makes it answer `undefined`, and the caller validates with zod, whose messages users and scripts rely on.
// test/unit/config/flags-only.test.ts holds it to the zod schema's answers.
import { LOG_LEVELS, type LogLevel } from "../log.js";
import { DEFAULT_LISTEN_PEER, DEFAULT_VOTERS, MAX_VOTERS } from "./defaults.js";
import type { VigieConfig } from "./schema.js";

/**
 * An http(s) URL as the schema's `url` accepts it (zod's URL check with the http protocol: surrounding
 * whitespace trimmed, `scheme://` required, parseable by WHATWG URL, protocol http or https), returned as the schema
 * returns it (trimmed, tabs and newlines removed); undefined when the schema would reject it.
 */
function httpUrl(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const trimmed = value.trim();
  if (!/^https?:\/\//i.test(trimmed)) return undefined;
  const parsed = URL.parse(trimmed);
  if (parsed === null || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) return undefined;
  return trimmed.replace(/[\t\n\r]/g, "");
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

/** `--store-endpoints a,b`: comma-separated URLs, blanks between commas ignored, at least one. */
function urlList(value: unknown): string[] | undefined {
  if (typeof value !== "string") return undefined;
  const urls: string[] = [];
  for (const part of value.split(",")) {
    const trimmed = part.trim();
    if (trimmed === "") continue;
    const url = httpUrl(trimmed);
    if (url === undefined) return undefined;
    urls.push(url);
  }
  return urls.length > 0 ? urls : undefined;
}

function isLogLevel(value: unknown): value is LogLevel {
  return (LOG_LEVELS as readonly unknown[]).includes(value);
}

/** One field: the value as the schema outputs it, or undefined when this fast path cannot vouch for it. */
type FieldCheck = (value: unknown) => unknown;

const FIELDS: Record<string, FieldCheck> = {
  name: nonEmptyString,
  data_dir: nonEmptyString,
  listen_client: httpUrl,
  listen_peer: httpUrl,
  advertise_client: httpUrl,
  advertise_peer: httpUrl,
  // From the command line always the `name=peerURL,...` string; its map form comes only from a file.
  initial_cluster: nonEmptyString,
  join: httpUrl,
  voters: (value) =>
    typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= MAX_VOTERS ? value : undefined,
  store_endpoints: urlList,
  dev: (value) => (typeof value === "boolean" ? value : undefined),
  log_level: (value) => (isLogLevel(value) ? value : undefined),
};

/**
 * The config for `flags` (fields in the config's snake_case names, as given on the command line, no file), or
 * undefined when any of them needs the full schema: to be rejected with its message, or because it has a shape
 * the command line does not produce.
 */
export function configFromFlagsOnly(flags: Readonly<Record<string, unknown>>): VigieConfig | undefined {
  const checked: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(flags)) {
    const check = FIELDS[field];
    if (check === undefined || value === undefined) return undefined;
    const output = check(value);
    if (output === undefined) return undefined;
    checked[field] = output;
  }
  // The defaults the schema fills in; the fields above were each checked to have the schema's output type.
  const config: Record<string, unknown> = {
    ...checked,
    listen_peer: checked.listen_peer ?? DEFAULT_LISTEN_PEER,
    voters: checked.voters ?? DEFAULT_VOTERS,
    dev: checked.dev ?? false,
    log_level: checked.log_level ?? "info",
    templates: [],
    services: [],
  };
  return config as VigieConfig;
}
