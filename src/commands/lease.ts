// `vigie lease grant TTL | revoke ID | keepalive ID`.
import { NotAvailableError } from "../errors.js";
import type { ClientOptions } from "./options.js";

export async function runLease(
  action: "grant" | "revoke" | "keepalive",
  _argument: string,
  _options: ClientOptions,
): Promise<number> {
  throw new NotAvailableError(`vigie lease ${action}`);
}
