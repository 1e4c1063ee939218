// Type confusion for the KV differential test: takes a valid request body and puts a value of another JSON type
// (or an odd spelling of the right type) in ONE of its fields, nested ones included, so that the two gateways'
// decoding errors (Go's json/jsonpb wording on etcd) are compared field by field, and the odd values they both
// accept are compared by what they do.
import fc from "fast-check";

/** Replacement values; strings starting with RAW are written into the JSON text as they are (not quoted). */
export const MISTYPE_VALUES: readonly unknown[] = [
  5,
  1.5,
  -1,
  0,
  "x",
  "",
  "YQ==",
  "YQ",
  true,
  false,
  null,
  {},
  [],
  [1],
  ["YQ=="],
  [null],
  "1e2",
  " 7 ",
  "-0",
  "RAW1e2",
  "RAW1.0",
  "RAW-0",
  "RAW9223372036854775807",
  "RAW12345678901234567890",
];

/** Enum fields: an integer outside the enum is accepted by etcd and refused by vigie (on purpose; see the report). */
const ENUM_FIELDS = new Set(["sort_order", "sortOrder", "sort_target", "sortTarget", "result", "target"]);

export const mistypeArbitrary = fc.record({
  pick: fc.nat({ max: 1000 }),
  value: fc.integer({ min: 0, max: MISTYPE_VALUES.length - 1 }),
});

interface Slot {
  holder: Record<string, unknown> | unknown[];
  key: string | number;
}

function slotsOf(value: unknown, out: Slot[]): Slot[] {
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      out.push({ holder: value, key: index });
      slotsOf(item, out);
    });
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      out.push({ holder: value as Record<string, unknown>, key });
      slotsOf(item, out);
    }
  }
  return out;
}

/** The body with field number `pick` (in a depth-first walk) replaced by MISTYPE_VALUES[value]. */
export function mistypeBody(body: string, pick: number, value: number): string {
  const parsed = JSON.parse(body) as unknown;
  const slots = slotsOf(parsed, []);
  if (slots.length === 0) return body;
  const slot = slots[pick % slots.length]!;
  let replacement = MISTYPE_VALUES[value];
  const isEnum = typeof slot.key === "string" && ENUM_FIELDS.has(slot.key);
  if (isEnum && (replacement === 5 || replacement === -1)) replacement = "x";
  // etcd grants negative lease ids; vigie refuses them on purpose (its ids are positive safe integers).
  // Nor ids beyond 2^53 (it says so instead of granting another id).
  const hugeId = typeof replacement === "string" && /^RAW\d{16,}$/.test(replacement);
  if (slot.key === "ID" && (replacement === -1 || hugeId)) replacement = "x";
  // A valid key outside the run's prefix would make a range span every earlier run (hundreds of keys), where
  // etcd's unstable sort orders equal versions arbitrarily (see the report): keep keys inside the run.
  const isKeyField = ["key", "range_end", "rangeEnd"].includes(String(slot.key));
  if (isKeyField && (replacement === "YQ==" || (Array.isArray(replacement) && replacement.length > 0))) {
    replacement = "YQ";
  }
  // etcd's gateway panics (the connection drops, no answer) on a null txn op or compare: nothing to compare.
  const inMessageList = Array.isArray(slot.holder) || ["compare", "success", "failure"].includes(String(slot.key));
  if (inMessageList && (replacement === null || (Array.isArray(replacement) && replacement.includes(null)))) {
    replacement = "x";
  }
  const raw = typeof replacement === "string" && replacement.startsWith("RAW") ? replacement.slice(3) : undefined;
  const marker = "\u0001RAW-VALUE\u0001";
  (slot.holder as Record<string | number, unknown>)[slot.key] = raw === undefined ? replacement : marker;
  const text = JSON.stringify(parsed);
  return raw === undefined ? text : text.replace(JSON.stringify(marker), raw);
}
