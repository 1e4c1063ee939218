// Compiling and executing one Handlebars template against a `KeyReader`.
// Output is not HTML-escaped (these are config files, not web pages) and templates cannot reach prototypes.
import Handlebars from "handlebars";
import { type SourceLocation, TemplateRenderError, TemplateSyntaxError } from "./errors.js";
import { helpers, withActiveRender } from "./helpers.js";
import { Dependencies, type KeyReader } from "./reader.js";

/** A template source larger than this is a mistake (a binary, a log file), not a config template. */
export const TEMPLATE_SOURCE_MAX_BYTES = 1024 * 1024;
/** Rendered output limit: no config file needs more, and it bounds memory if a loop runs away. */
export const RENDER_OUTPUT_MAX_BYTES = 16 * 1024 * 1024;

/** One isolated Handlebars environment for vigie: user templates cannot register or override helpers. */
const environment = Handlebars.create();
for (const [name, helper] of Object.entries(helpers)) environment.registerHelper(name, helper);

export interface CompiledTemplate {
  name: string;
  run: Handlebars.TemplateDelegate;
}

export interface RenderResult {
  output: string;
  revision: number;
  deps: Dependencies;
}

function syntaxLocation(error: unknown): SourceLocation | undefined {
  const e = error as { lineNumber?: unknown; column?: unknown; message?: string };
  if (typeof e.lineNumber === "number") {
    return { line: e.lineNumber, column: typeof e.column === "number" ? e.column + 1 : 1 };
  }
  const match = /on line (\d+)/.exec(e.message ?? "");
  return match ? { line: Number(match[1]), column: 1 } : undefined;
}

/** Parses and compiles now, so a syntax error is reported when the template is loaded, not at first render. */
export function compileTemplate(name: string, source: string): CompiledTemplate {
  if (Buffer.byteLength(source) > TEMPLATE_SOURCE_MAX_BYTES) {
    throw new TemplateSyntaxError(name, undefined, `larger than ${TEMPLATE_SOURCE_MAX_BYTES} bytes`);
  }
  try {
    environment.parse(source);
    const run = environment.compile(source, { noEscape: true, strict: false, preventIndent: true });
    // compile() is lazy; precompile surfaces the compiler's errors (unknown block shapes) now as well.
    environment.precompile(source, { noEscape: true });
    return { name, run };
  } catch (error) {
    const message = (error as Error).message.split("\n").filter((line) => line.trim() !== "");
    const detail = message.length > 1 ? `${message[0]} ${message[message.length - 1]}` : (message[0] ?? "");
    throw new TemplateSyntaxError(name, syntaxLocation(error), detail);
  }
}

/**
 * Renders at the reader's revision. Throws `MissingKeyError`/`TemplateRenderError` on failure. When the result's
 * `deps.complete` is false, the template read data that is not loaded yet: load `deps.missing*` and render again.
 */
export function renderTemplate(
  template: CompiledTemplate,
  reader: KeyReader,
  /** Filled with every read, even when the render throws: a failed render must still be retried on change. */
  deps: Dependencies = new Dependencies(),
  outputMaxBytes = RENDER_OUTPUT_MAX_BYTES,
): RenderResult {
  const revision = reader.revision;
  const output = withActiveRender({ template: template.name, reader, deps }, () => {
    try {
      return template.run(
        {},
        {
          data: { revision },
          allowProtoPropertiesByDefault: false,
          allowProtoMethodsByDefault: false,
        },
      );
    } catch (error) {
      if (error instanceof Error && "code" in error && String(error.code).startsWith("VIGIE_ERR_")) throw error;
      throw new TemplateRenderError(template.name, syntaxLocation(error), (error as Error).message, { cause: error });
    }
  });
  // Measured in UTF-16 units first (free), in bytes only when it might be over.
  if (output.length * 3 > outputMaxBytes && Buffer.byteLength(output) > outputMaxBytes) {
    throw new TemplateRenderError(template.name, undefined, `output larger than ${outputMaxBytes} bytes`);
  }
  return { output, revision, deps };
}
