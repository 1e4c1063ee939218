// `vigie get | put | del | watch`: key-value commands against any member of the cluster (or etcd).
import { NotAvailableError } from "../errors.js";
import type { DelOptions, GetOptions, PutOptions, WatchOptions } from "./options.js";

export async function runGet(_key: string, _options: GetOptions): Promise<number> {
  throw new NotAvailableError("vigie get");
}

export async function runPut(_key: string, _value: string, _options: PutOptions): Promise<number> {
  throw new NotAvailableError("vigie put");
}

export async function runDel(_key: string, _options: DelOptions): Promise<number> {
  throw new NotAvailableError("vigie del");
}

export async function runWatch(_key: string, _options: WatchOptions): Promise<number> {
  throw new NotAvailableError("vigie watch");
}
