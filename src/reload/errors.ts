// Expected reload failures. None of them sends a signal to an unverified process.
import { VigieError } from "../errors.js";

export class ReloadFailedError extends VigieError {
  constructor(
    readonly target: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super("VIGIE_ERR_RELOAD_FAILED", `reload ${target}: ${detail}`, options);
  }
}
