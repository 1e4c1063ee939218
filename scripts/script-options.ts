// Options of the npm scripts (sim, bench): node's parser, with its errors turned into a usage line and exit 2 (its
// message names the option, "Unknown option '--sed'"; its stack trace says nothing more) and --help into the usage
// and exit 0.
import { type ParseArgsConfig, parseArgs } from "node:util";

export interface ScriptUsage {
  /** The script's name, before each error message. */
  name: string;
  /** The usage line, printed after an error and first by --help. */
  usage: string;
  /** What --help prints after the usage line. */
  help: string;
}

/** Prints `name: message` and the usage line, and exits 2. */
export function usageError(script: ScriptUsage, message: string): never {
  console.error(`${script.name}: ${message}\n${script.usage}`);
  process.exit(2);
}

/** What node's parser makes of `options`. */
type ParsedOptions<T extends ScriptOptions> = ReturnType<typeof parseArgs<{ options: T }>>["values"];
type ScriptOptions = NonNullable<ParseArgsConfig["options"]>;

/** The parsed `options` (the script does not declare --help: this adds it); exits on a bad option or on --help. */
export function parseScriptOptions<const T extends ScriptOptions>(script: ScriptUsage, options: T): ParsedOptions<T> {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ options: { ...options, help: { type: "boolean", short: "h" } } }).values;
  } catch (error) {
    usageError(script, (error as Error).message);
  }
  if (values.help === true) {
    console.log(`${script.usage}\n${script.help}`);
    process.exit(0);
  }
  delete values.help;
  return values as ParsedOptions<T>;
}
