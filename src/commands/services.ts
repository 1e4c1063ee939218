// `vigie services [NAME]`: the registered service instances and their health.
import { NotAvailableError } from "../errors.js";
import type { ClientOptions } from "./options.js";

export async function runServices(
  _name: string | undefined,
  _options: ClientOptions & { all: boolean },
): Promise<number> {
  throw new NotAvailableError("vigie services");
}
