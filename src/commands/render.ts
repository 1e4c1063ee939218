// `vigie render --once [--dry]`: render every template once and exit (placeholder until the sidecar lands).
import type { VigieConfig } from "../config/schema.js";
import { NotAvailableError } from "../errors.js";
import type { Logger } from "../log.js";

export async function runRender(_options: {
  config: VigieConfig;
  baseDir: string;
  endpoints: string[];
  once: boolean;
  dry: boolean;
  logger: Logger;
}): Promise<number> {
  throw new NotAvailableError("vigie render");
}
