// Loads the YAML config, applies flag overrides and validates the whole result before anything runs.
// Every error names the file, the line and column, and the field path, e.g.
//   vigie.yaml:7:15: templates[1].reload.signal: unknown signal "SIGHPU"
import { access, readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import type { Document, LineCounter, Node } from "yaml";
import type { z } from "zod";
import { ConfigError } from "../errors.js";
import { configFromFlagsOnly } from "./flags-only.js";
import { checkRoles } from "./roles.js";
import type { VigieConfig } from "./schema.js";
import { closestField, knownFieldsAt } from "./suggest.js";

/** Config file size limit: a config is a few KiB; anything near this is a mistake (a binary, a log file). */
const CONFIG_MAX_BYTES = 1024 * 1024;

export interface LoadedConfig {
  config: VigieConfig;
  /** Absolute path of the file, or undefined when the config came from flags only. */
  file: string | undefined;
  /** Directory that relative paths in the file (template sources) are resolved against. */
  baseDir: string;
}

export interface LoadOptions {
  /**
   * Also check the agent's role settings against each other (src/config/roles.ts), as `vigie agent` does before it
   * starts. Off for readers that use only part of the file (`vigie render`, the sidecar re-reading it on a change):
   * the file alone may lack what the agent's flags add (a --name its --initial-cluster lists).
   */
  agentRole?: boolean;
}

/** Flag values in the config's own snake_case names; `undefined` means "not given on the command line". */
export type ConfigOverrides = Partial<Record<keyof VigieConfig, unknown>>;

type Path = ReadonlyArray<PropertyKey>;

/** Formats a zod path as users write it: `templates[1].reload.signal`. */
export function formatPath(path: Path): string {
  let text = "";
  for (const part of path) {
    if (typeof part === "number") text += `[${part}]`;
    else text += text === "" ? String(part) : `.${String(part)}`;
  }
  return text;
}

/** Picks the union branch that came closest to matching, so the user sees its specific complaint. */
function closestBranch(branches: z.core.$ZodIssue[][]): z.core.$ZodIssue[] {
  const cost = (issues: z.core.$ZodIssue[]) =>
    issues.reduce((sum, issue) => sum + (issue.code === "unrecognized_keys" ? issue.keys.length * 2 : 1), 0);
  return branches.reduce((best, branch) => (cost(branch) < cost(best) ? branch : best));
}

interface FlatIssue {
  path: Path;
  message: string;
}

function flatten(issues: z.core.$ZodIssue[], prefix: Path = []): FlatIssue[] {
  const out: FlatIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === "invalid_union" && issue.errors.length > 0) {
      out.push(...flatten(closestBranch(issue.errors), path));
    } else if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ path: [...path, key], message: "unknown field" });
    } else {
      out.push({ path, message: describeIssue(issue) });
    }
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type") {
    const expected = issue.expected === "int" ? "a whole number" : issue.expected;
    return issue.input === undefined ? "is required" : `expected ${expected}, got ${typeName(issue.input)}`;
  }
  if (issue.code === "invalid_value") {
    const choices = issue.values.map((value) => String(value)).join(", ");
    const got = issue.input === undefined ? "" : `, got ${typeName(issue.input)}`;
    return issue.values.length === 1 ? `must be ${choices}${got}` : `must be one of ${choices}${got}`;
  }
  // A schema's own message says more than the generic one (e.g. what an argv array must hold).
  const custom = !/^(Too small|Too big)\b/.test(issue.message);
  if (issue.code === "too_big") return custom ? issue.message : `must be at most ${String(issue.maximum)}`;
  if (issue.code === "too_small") {
    if (custom) return issue.message;
    // A length, not a value: "must be at least 1" read as a number for `name: ""` or `store_endpoints: []`.
    if (issue.origin === "string" && Number(issue.minimum) === 1) return "must not be empty";
    if (issue.origin === "array" && Number(issue.minimum) === 1) return "needs at least one entry";
    return `must be at least ${String(issue.minimum)}`;
  }
  return issue.message.replace(/^Invalid input: /, "");
}

/** How much of a wrong value a message quotes: enough to recognise it, not a whole pasted file. */
const QUOTED_VALUE_MAX_CHARS = 60;

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  const text = JSON.stringify(value) ?? String(value);
  const quoted = text.length > QUOTED_VALUE_MAX_CHARS ? `${text.slice(0, QUOTED_VALUE_MAX_CHARS)}...` : text;
  return `${typeof value} ${quoted}`;
}

/**
 * A config file as parsed, with the yaml module that parsed it: yaml is imported only when there is a file (an
 * agent started from flags alone never loads it, ~2.6 MB resident).
 */
interface ParsedFile {
  yaml: typeof import("yaml");
  document: Document;
  lineCounter: LineCounter;
}

/** Finds the YAML node for a path; for an unknown key, its key node; else the closest existing parent. */
function nodeAt({ yaml: { isMap, isPair, isScalar }, document }: ParsedFile, path: Path): Node | undefined {
  for (let length = path.length; length >= 0; length--) {
    const parentPath = path.slice(0, length - 1);
    const last = path[length - 1];
    const parent = length === 0 ? document.contents : document.getIn(parentPath as unknown[], true);
    if (length === 0) return (parent as Node | null) ?? undefined;
    if (isMap(parent)) {
      const pair = parent.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === last);
      if (pair && isPair(pair)) return ((pair.value as Node | null) ?? (pair.key as Node)) || undefined;
    }
    const node = document.getIn([...parentPath, last] as unknown[], true);
    if (node && typeof node === "object") return node as Node;
  }
  return undefined;
}

/** For an unknown field, point at the key itself rather than its value. */
function keyNodeAt({ yaml: { isMap, isPair, isScalar }, document }: ParsedFile, path: Path): Node | undefined {
  const parent = document.getIn(path.slice(0, -1) as unknown[], true);
  if (!isMap(parent)) return undefined;
  const pair = parent.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === path.at(-1));
  return pair && isPair(pair) ? (pair.key as Node) : undefined;
}

/**
 * Validates a raw config object and throws one ConfigError listing every problem.
 * `source` maps an issue to "file:line:col" (or to the flag that set the field).
 * The zod schemas are imported here, on first use: an agent started from flags alone that are all valid never
 * needs them (see flags-only.ts).
 */
async function validate(raw: unknown, locate: (path: Path, unknownField: boolean) => Location): Promise<VigieConfig> {
  const { configSchema } = await import("./schema.js");
  // reportInput: a value of the wrong type is then told apart from a missing one ("expected number, got string").
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  const problems = flatten(result.error.issues).map((issue) => {
    const where = locate(issue.path, issue.message === "unknown field");
    const field = formatPath(issue.path);
    const message = issue.message === "unknown field" ? unknownFieldMessage(configSchema, issue.path) : issue.message;
    const text = field === "" || where.flag ? message : `${field}: ${message}`;
    return { where, text: where.text === "" ? text : `${where.text}: ${text}` };
  });
  // Flags first, then in file order, so the list reads top to bottom like the file.
  problems.sort((a, b) => a.where.line - b.where.line || a.where.column - b.where.column);
  throw new ConfigError(problems.map((problem) => problem.text).join("\n"));
}

function unknownFieldMessage(schema: z.core.$ZodType, path: Path): string {
  const unknown = String(path.at(-1));
  const meant = closestField(unknown, knownFieldsAt(schema, path.slice(0, -1)));
  return meant === undefined ? `unknown field "${unknown}"` : `unknown field "${unknown}" (did you mean "${meant}"?)`;
}

/** Where a problem is: `file:line:col`, `flag --x`, or nothing known; line/column order the report. */
interface Location {
  text: string;
  flag: boolean;
  line: number;
  column: number;
}

const FLAG_FOR_FIELD = (field: string) => `--${field.replaceAll("_", "-")}`;

/**
 * Reads and validates the config: the YAML file (if any) with flag overrides on top.
 * Template sources must exist; they are resolved relative to the config file's directory.
 */
export async function loadConfig(
  file: string | undefined,
  overrides: ConfigOverrides = {},
  options: LoadOptions = {},
): Promise<LoadedConfig> {
  const definedOverrides = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined));
  let raw: Record<string, unknown> = {};
  let parsed: ParsedFile | undefined;
  const absoluteFile = file === undefined ? undefined : resolve(file);
  if (absoluteFile !== undefined) {
    const text = await readConfigText(absoluteFile, file!);
    const yaml = await import("yaml");
    const lineCounter = new yaml.LineCounter();
    const document = yaml.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    parsed = { yaml, document, lineCounter };
    const yamlError = document.errors[0];
    if (yamlError) {
      const position = lineCounter.linePos(yamlError.pos[0]);
      const reason = yamlError.message.split("\n")[0] ?? yamlError.message;
      throw new ConfigError(`${file}:${position.line}:${position.col}: invalid YAML: ${reason}`);
    }
    const contents = document.toJS() as unknown;
    if (contents !== null && contents !== undefined) {
      if (typeof contents !== "object" || Array.isArray(contents)) {
        throw new ConfigError(`${file}:1:1: the config must be a map of settings (templates:, services:, ...)`);
      }
      raw = contents as Record<string, unknown>;
    }
  }
  const locate = (path: Path, unknownField: boolean): Location => {
    const top = path[0];
    if (typeof top === "string" && top in definedOverrides) {
      return { text: `flag ${FLAG_FOR_FIELD(top)}`, flag: true, line: 0, column: 0 };
    }
    if (!parsed || file === undefined) return { text: "", flag: false, line: 0, column: 0 };
    const node = (unknownField ? keyNodeAt(parsed, path) : undefined) ?? nodeAt(parsed, path);
    const offset = node?.range?.[0];
    if (offset === undefined) return { text: file, flag: false, line: 0, column: 0 };
    const position = parsed.lineCounter.linePos(offset);
    return { text: `${file}:${position.line}:${position.col}`, flag: false, line: position.line, column: position.col };
  };
  const config =
    (parsed === undefined ? configFromFlagsOnly(definedOverrides) : undefined) ??
    (await validate({ ...raw, ...definedOverrides }, locate));
  if (options.agentRole === true) {
    checkRoles(config, {
      where: (field) => locate([field], false).text,
      byFlag: (field) => field in definedOverrides,
      given: (field) => field in definedOverrides || field in raw,
    });
  }
  const baseDir = absoluteFile === undefined ? process.cwd() : dirname(absoluteFile);
  await checkTemplateSources(config, baseDir, locate);
  return { config, file: absoluteFile, baseDir };
}

async function readConfigText(absoluteFile: string, shownName: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(absoluteFile);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reasons: Record<string, string> = {
      ENOENT: "file not found",
      EACCES: "permission denied",
      EISDIR: "it is a directory, not a file",
    };
    const reason = (code === undefined ? undefined : reasons[code]) ?? (error as Error).message;
    throw new ConfigError(`${shownName}: cannot read config: ${reason}`, { cause: error });
  }
  if (bytes.length > CONFIG_MAX_BYTES) {
    throw new ConfigError(`${shownName}: config is ${bytes.length} bytes, over the ${CONFIG_MAX_BYTES}-byte limit`);
  }
  return bytes.toString("utf8");
}

/** Resolves a path from the config relative to the config file's directory. */
export function resolveFromConfig(baseDir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

async function checkTemplateSources(
  config: VigieConfig,
  baseDir: string,
  locate: (path: Path, unknownField: boolean) => Location,
): Promise<void> {
  const problems: string[] = [];
  for (const [index, template] of config.templates.entries()) {
    const source = resolveFromConfig(baseDir, template.source);
    try {
      await access(source);
    } catch {
      const path = ["templates", index, "source"];
      problems.push(`${locate(path, false).text}: ${formatPath(path)}: template file not found: ${source}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems.join("\n"));
}
