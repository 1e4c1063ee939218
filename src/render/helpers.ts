// Template helpers. Rendering is synchronous, so the render in progress is held in one module-level slot
// (`activeRender`) instead of being threaded through Handlebars' data frames, where a template could reach it.
// Every read goes through `readKey`/`readPrefix`, which record the dependency before answering.
import assert from "node:assert/strict";
import { isUtf8 } from "node:buffer";
import type { HelperOptions } from "handlebars";
import { MissingKeyError, type SourceLocation, TemplateRenderError } from "./errors.js";
import { type Dependencies, type Entry, INSTANCE_ID_MAX_CHARS, type KeyReader } from "./reader.js";

interface ActiveRender {
  template: string;
  reader: KeyReader;
  deps: Dependencies;
}

let activeRender: ActiveRender | undefined;

/** Runs `body` with `render` as the active render; helpers called outside one are a programmer error. */
export function withActiveRender<T>(render: ActiveRender, body: () => T): T {
  assert.ok(activeRender === undefined, "renders do not nest");
  activeRender = render;
  try {
    return body();
  } finally {
    activeRender = undefined;
  }
}

function current(): ActiveRender {
  assert.ok(activeRender !== undefined, "a template helper ran outside a render");
  return activeRender;
}

function locationOf(options: HelperOptions | undefined): SourceLocation | undefined {
  const loc = (options as { loc?: { start?: { line: number; column: number } } } | undefined)?.loc?.start;
  return loc === undefined ? undefined : { line: loc.line, column: loc.column + 1 };
}

/** Handlebars passes its options object last; positional arguments come before it. */
function splitArgs(args: unknown[]): { values: unknown[]; options: HelperOptions | undefined } {
  const last = args[args.length - 1] as { hash?: unknown } | undefined;
  const isOptions = typeof last === "object" && last !== null && "hash" in last;
  return {
    values: isOptions ? args.slice(0, -1) : args,
    options: isOptions ? (last as HelperOptions) : undefined,
  };
}

function fail(options: HelperOptions | undefined, detail: string): never {
  throw new TemplateRenderError(current().template, locationOf(options), detail);
}

function stringArg(helper: string, value: unknown, options: HelperOptions | undefined): string {
  if (typeof value === "string" && value.length > 0) return value;
  return fail(options, `${helper}: expected a non-empty string, got ${JSON.stringify(value)}`);
}

/**
 * Templates render text. Bytes that are not UTF-8 would come out as replacement characters (consul-template copies
 * them raw; a JavaScript string cannot), so reading such a value fails and the previous file stays.
 */
function refuseBinary(key: string, options: HelperOptions | undefined): void {
  if (current().reader.notText?.(key) === true) {
    fail(options, `key "${key}": the value is not UTF-8 text, and templates render text`);
  }
}

/** Reads one key; `undefined` when absent. A not-yet-loaded key is recorded and read as absent. */
function readKey(key: string): string | undefined {
  const render = current();
  render.deps.keys.add(key);
  if (!render.reader.hasKey(key)) {
    render.deps.missingKeys.add(key);
    return undefined;
  }
  return render.reader.getKey(key);
}

/** A key's value for the template; `exists` reads with readKey alone (it shows no value). */
function readValue(key: string, options: HelperOptions | undefined): string | undefined {
  const value = readKey(key);
  if (value !== undefined) refuseBinary(key, options);
  return value;
}

/** The entries a listing helper hands to the template, none of them binary. */
function listed(entries: readonly Entry[], options: HelperOptions | undefined): readonly Entry[] {
  if (current().reader.notText !== undefined) for (const entry of entries) refuseBinary(entry.key, options);
  return entries;
}

function readPrefix(prefix: string): readonly Entry[] {
  const render = current();
  render.deps.prefixes.add(prefix);
  if (!render.reader.hasPrefix(prefix)) {
    render.deps.missingPrefixes.add(prefix);
    return [];
  }
  return render.reader.getPrefix(prefix);
}

/** `ls` and `tree` take a directory-like prefix; `/a` and `/a/` both mean "under /a/". */
function directory(prefix: string): string {
  return prefix.endsWith("/") ? prefix : `${prefix}/`;
}

export interface ServiceInstance {
  id: string;
  name: string;
  address: string;
  host: string;
  port: number;
  tags: string[];
  meta: Record<string, string>;
}

/**
 * Ids and hosts end up verbatim in nginx/haproxy configs: anything beyond these characters (spaces, `;`, newlines)
 * could inject directives, so such an instance is left out instead.
 */
const SAFE_ID = new RegExp(`^[A-Za-z0-9._-]{1,${INSTANCE_ID_MAX_CHARS}}$`);
const SAFE_HOST = /^[A-Za-z0-9._:-]{1,255}$/;

function toInstance(name: string, id: string, parsed: unknown): ServiceInstance | undefined {
  if (typeof parsed !== "object" || parsed === null || !SAFE_ID.test(id)) return undefined;
  const value = parsed as Record<string, unknown>;
  if (value.health !== "passing") return undefined;
  const address = typeof value.address === "string" ? value.address : "";
  const separator = address.lastIndexOf(":");
  const host =
    typeof value.host === "string" ? value.host : address.slice(0, Math.max(separator, 0)).replace(/^\[|\]$/g, "");
  const port = typeof value.port === "number" ? value.port : Number(address.slice(separator + 1));
  if (!SAFE_HOST.test(host) || !Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  const tags = Array.isArray(value.tags) ? value.tags.filter((tag): tag is string => typeof tag === "string") : [];
  const meta: Record<string, string> = {};
  if (typeof value.meta === "object" && value.meta !== null) {
    for (const [k, v] of Object.entries(value.meta)) if (typeof v === "string") meta[k] = v;
  }
  // The address is rebuilt from the validated parts rather than trusted as given.
  const safeAddress = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  return { id, name, address: safeAddress, host, port, tags, meta };
}

function parseServiceValue(reader: KeyReader, text: string): unknown {
  if (reader.parseCached) return reader.parseCached(text);
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export const helpers: Record<string, (this: unknown, ...args: unknown[]) => unknown> = {
  key(this: unknown, ...args) {
    const { values, options } = splitArgs(args);
    // `{{key}}` inside `{{#each (ls ...)}}` means the entry's `key` field, which the helper's name shadows.
    if (values.length === 0 && typeof this === "object" && this !== null && Object.hasOwn(this, "key")) {
      return (this as { key: unknown }).key;
    }
    const key = stringArg("key", values[0], options);
    const value = readValue(key, options);
    if (value === undefined) {
      const render = current();
      // Not loaded yet: the render is discarded anyway, so do not report a missing key.
      if (render.deps.missingKeys.has(key)) return "";
      throw new MissingKeyError(render.template, key, locationOf(options));
    }
    return value;
  },
  keyOrDefault(...args) {
    const { values, options } = splitArgs(args);
    const value = readValue(stringArg("keyOrDefault", values[0], options), options);
    return value ?? (values[1] === undefined ? "" : String(values[1]));
  },
  exists(...args) {
    const { values, options } = splitArgs(args);
    return readKey(stringArg("exists", values[0], options)) !== undefined;
  },
  ls(...args) {
    const { values, options } = splitArgs(args);
    const prefix = directory(stringArg("ls", values[0], options));
    return listed(
      readPrefix(prefix).filter((entry) => entry.name !== "" && !entry.name.includes("/")),
      options,
    );
  },
  tree(...args) {
    const { values, options } = splitArgs(args);
    // The directory's own key (`/s/`, a "folder" key some tools write) is not one of its children.
    const entries = readPrefix(directory(stringArg("tree", values[0], options)));
    return listed(
      entries.filter((entry) => entry.name !== ""),
      options,
    );
  },
  service(...args) {
    const { values, options } = splitArgs(args);
    const name = stringArg("service", values[0], options);
    if (name.includes("/")) fail(options, `service: "${name}" is a service name, not a key`);
    const render = current();
    const instances: ServiceInstance[] = [];
    for (const entry of readPrefix(`/services/${name}/`)) {
      if (entry.name.includes("/")) continue;
      const instance = toInstance(name, entry.name, parseServiceValue(render.reader, entry.value));
      if (instance !== undefined) instances.push(instance);
    }
    // Entries come sorted by key, and the id is the last key segment: already sorted by id.
    return instances;
  },
  json(...args) {
    const { values } = splitArgs(args);
    return JSON.stringify(values[0] ?? null);
  },
  /** A PHP single-quoted string literal: only `\\` and `'` are special there, so no `$` interpolation. */
  phpString(...args) {
    const { values } = splitArgs(args);
    const text = values[0] === undefined || values[0] === null ? "" : String(values[0]);
    return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
  },
  parseJson(...args) {
    const { values, options } = splitArgs(args);
    const text = stringArg("parseJson", values[0], options);
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      return fail(options, `parseJson: ${(error as Error).message}`);
    }
  },
  env(...args) {
    const { values, options } = splitArgs(args);
    return process.env[stringArg("env", values[0], options)] ?? "";
  },
  default(...args) {
    const { values } = splitArgs(args);
    const [value, fallback] = values;
    return value === undefined || value === null || value === "" ? fallback : value;
  },
  join(...args) {
    const { values, options } = splitArgs(args);
    if (!Array.isArray(values[0])) fail(options, "join: expected a list");
    return (values[0] as unknown[]).map(String).join(values[1] === undefined ? "," : String(values[1]));
  },
  split(...args) {
    const { values, options } = splitArgs(args);
    if (typeof values[0] !== "string") fail(options, "split: expected a string");
    const text = values[0] as string;
    return text === "" ? [] : text.split(values[1] === undefined ? "," : String(values[1]));
  },
  sortBy(...args) {
    const { values, options } = splitArgs(args);
    if (!Array.isArray(values[0])) fail(options, "sortBy: expected a list");
    const field = stringArg("sortBy", values[1], options);
    const read = (item: unknown): unknown =>
      typeof item === "object" && item !== null && Object.hasOwn(item, field)
        ? (item as Record<string, unknown>)[field]
        : undefined;
    return [...(values[0] as unknown[])].sort((a, b) => {
      const x = read(a);
      const y = read(b);
      if (typeof x === "number" && typeof y === "number") return x - y;
      // Code-unit order, not localeCompare: the same data must render the same bytes on every host.
      const left = String(x ?? "");
      const right = String(y ?? "");
      return left < right ? -1 : left > right ? 1 : 0;
    });
  },
  base64Decode(...args) {
    const { values, options } = splitArgs(args);
    if (typeof values[0] !== "string") fail(options, "base64Decode: expected a string");
    const bytes = Buffer.from(values[0] as string, "base64");
    if (!isUtf8(bytes)) fail(options, "base64Decode: the decoded bytes are not UTF-8 text, and templates render text");
    return bytes.toString("utf8");
  },
};
