// Expected render failures. Each names the template and, when known, the line and column in its source, so the
// log line tells the operator exactly what to fix. The previous file always stays in place after any of them.
import { VigieError } from "../errors.js";

export interface SourceLocation {
  line: number;
  column: number;
}

function where(template: string, location: SourceLocation | undefined): string {
  return location === undefined ? template : `${template}:${location.line}:${location.column}`;
}

/** The template source does not parse. */
export class TemplateSyntaxError extends VigieError {
  constructor(
    readonly template: string,
    readonly location: SourceLocation | undefined,
    detail: string,
  ) {
    super("VIGIE_ERR_TEMPLATE_SYNTAX", `${where(template, location)}: template syntax error: ${detail}`);
  }
}

/** A template source of zero bytes is taken for one being written: it is not compiled, the previous one stays. */
export class EmptyTemplateError extends VigieError {
  constructor(readonly template: string) {
    super(
      "VIGIE_ERR_TEMPLATE_EMPTY",
      `${template}: the template is empty (still being written?): not used; its last good version, if any, stays ` +
        "in use. A template meant to render an empty file needs at least a comment: {{! empty }}",
    );
  }
}

/** `key` read a key that does not exist in the store. */
export class MissingKeyError extends VigieError {
  constructor(
    readonly template: string,
    readonly key: string,
    readonly location: SourceLocation | undefined,
  ) {
    super(
      "VIGIE_ERR_MISSING_KEY",
      `${where(template, location)}: key "${key}" does not exist (use keyOrDefault or exists for optional keys)`,
    );
  }
}

/** Any other failure while executing the template (a helper given bad arguments, output too large...). */
export class TemplateRenderError extends VigieError {
  constructor(
    readonly template: string,
    readonly location: SourceLocation | undefined,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super("VIGIE_ERR_RENDER", `${where(template, location)}: ${detail}`, options);
  }
}

/** The `check` command rejected the staged file (non-zero exit, signal or timeout). */
export class CheckFailedError extends VigieError {
  constructor(
    readonly template: string,
    detail: string,
  ) {
    super("VIGIE_ERR_CHECK_FAILED", `${template}: check failed: ${detail}`);
  }
}

/** Staging, renaming, chmod/chown or fsync of the destination failed. */
export class WriteFailedError extends VigieError {
  constructor(
    readonly template: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super("VIGIE_ERR_WRITE_FAILED", `${template}: ${detail}`, options);
  }
}
