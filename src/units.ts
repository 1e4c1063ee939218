// Parsers for the human units in config files and flags: durations, file modes, signal names.
// Each returns a value or throws a plain Error whose message the config loader wraps with file/line/path.
import { constants } from "node:os";

const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** One `<number><unit>` part; `ms` is tried before `m`. Sticky: parts must follow each other with nothing between. */
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;

/**
 * Parses `250ms`, `10s`, `1.5s`, `2m`, `1h` into whole milliseconds, and sums of them as Go writes durations (`1m30s`,
 * `1h0m0s`: etcd, confd and consul-template users write those). A bare `0` is accepted.
 */
export function parseDurationMs(text: string): number {
  const trimmed = text.trim();
  if (trimmed === "0") return 0;
  let totalMs = 0;
  let at = 0;
  while (at < trimmed.length) {
    DURATION_PART.lastIndex = at;
    const match = DURATION_PART.exec(trimmed);
    if (match === null) break;
    totalMs += Number(match[1]) * (DURATION_UNIT_MS[match[2]!] ?? 1);
    at = DURATION_PART.lastIndex;
  }
  if (trimmed.length === 0 || at < trimmed.length) {
    throw new Error(
      `invalid duration "${text}" (expected a number and a unit: ms, s, m or h, like 250ms, 10s or 1m30s)`,
    );
  }
  return Math.round(totalMs);
}

/** Parses an octal file mode string like `"0640"` or `"644"`. */
export function parseFileMode(text: string): number {
  if (!/^0?[0-7]{3,4}$/.test(text)) throw new Error(`invalid file mode "${text}" (expected octal like "0644")`);
  const mode = Number.parseInt(text, 8);
  if (mode > 0o7777) throw new Error(`invalid file mode "${text}"`);
  return mode;
}

/** Accepts `SIGHUP`, `HUP` or `sighup`; returns the canonical `SIGHUP`. */
export function parseSignalName(text: string): NodeJS.Signals {
  const upper = text.trim().toUpperCase();
  const name = upper.startsWith("SIG") ? upper : `SIG${upper}`;
  if (!Object.hasOwn(constants.signals, name)) throw new Error(`unknown signal "${text}"`);
  return name as NodeJS.Signals;
}
