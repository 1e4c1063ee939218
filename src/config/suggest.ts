// "Did you mean ...?" for an unknown field in the config file. The most common slip is writing a flag's name as it
// is typed on the command line (`data-dir`, `logLevel`) instead of the file's snake_case (`data_dir`), then plain
// typos (`destinaton`, `voter`): the message names the field the user most likely meant.
import type { z } from "zod";

type Schema = z.core.$ZodType;

/** How far two names may be apart (edits) and still be offered; short names get less room, as any two are close. */
function maxDistanceFor(name: string): number {
  return name.length <= 4 ? 1 : 2;
}

/** The schema found at `path` (array indexes step into elements); union branches are all returned. */
function schemasAt(schema: Schema, path: ReadonlyArray<PropertyKey>): Schema[] {
  let current: Schema[] = [schema];
  for (const part of path) {
    const next: Schema[] = [];
    for (const candidate of current.flatMap(unwrap)) {
      const def = candidate._zod.def as unknown as { type: string; shape?: Record<string, Schema>; element?: Schema };
      if (typeof part === "number" && def.type === "array" && def.element) next.push(def.element);
      if (typeof part === "string" && def.type === "object" && def.shape?.[part]) next.push(def.shape[part]);
    }
    current = next;
  }
  return current.flatMap(unwrap);
}

/** Steps through wrappers (optional, default, pipe, transform input) and into every branch of a union. */
function unwrap(schema: Schema): Schema[] {
  const def = schema._zod.def as unknown as { type: string; innerType?: Schema; in?: Schema; options?: Schema[] };
  if ((def.type === "optional" || def.type === "default" || def.type === "nullable") && def.innerType) {
    return unwrap(def.innerType);
  }
  if (def.type === "pipe" && def.in) return unwrap(def.in);
  if (def.type === "union" && def.options) return def.options.flatMap(unwrap);
  return [schema];
}

/** The field names a map at `path` accepts (every branch's, for a union). */
export function knownFieldsAt(schema: Schema, path: ReadonlyArray<PropertyKey>): string[] {
  const fields = new Set<string>();
  for (const candidate of schemasAt(schema, path)) {
    const def = candidate._zod.def as unknown as { type: string; shape?: Record<string, Schema> };
    if (def.type === "object" && def.shape) for (const field of Object.keys(def.shape)) fields.add(field);
  }
  return [...fields];
}

/**
 * `data-dir`, `dataDir` and `DATA_DIR` all mean `data_dir`; etcd's `listen-client-urls` means `listen_client` (vigie
 * names its settings like etcd's flags, one URL each).
 */
function canonical(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replaceAll("-", "_")
    .toLowerCase()
    .replace(/_urls$/, "");
}

/** Levenshtein distance, giving up (returning limit + 1) once it is over `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const value = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + cost);
      row.push(value);
      rowMin = Math.min(rowMin, value);
    }
    if (rowMin > limit) return limit + 1;
    previous = row;
  }
  return previous[b.length]!;
}

/** The known field closest to `unknown`, when one is close enough to be what the user meant. */
export function closestField(unknown: string, known: readonly string[]): string | undefined {
  const wanted = canonical(unknown);
  const exact = known.find((field) => canonical(field) === wanted);
  if (exact !== undefined) return exact;
  const limit = maxDistanceFor(wanted);
  let best: { field: string; distance: number } | undefined;
  for (const field of known) {
    const distance = editDistance(wanted, field, limit);
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { field, distance };
  }
  return best?.field;
}
