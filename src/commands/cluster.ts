// `vigie member list|add|remove|promote` and `vigie status`.
import { NotAvailableError } from "../errors.js";
import type { ClientOptions } from "./options.js";

export async function runMember(
  action: "list" | "add" | "remove" | "promote",
  _args: string[],
  _options: ClientOptions & { learner: boolean },
): Promise<number> {
  throw new NotAvailableError(`vigie member ${action}`);
}

export async function runStatus(_options: ClientOptions): Promise<number> {
  throw new NotAvailableError("vigie status");
}
