// Parsers for the human units in config files and flags: durations, file modes, signal names.
// Each returns a value or throws a plain Error whose message the config loader wraps with file/line/path.
import { constants } from "node:os";

const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** Parses `250ms`, `10s`, `1.5s`, `2m`, `1h` into whole milliseconds. A bare `0` is accepted. */
export function parseDurationMs(text: string): number {
  const trimmed = text.trim();
  if (trimmed === "0") return 0;
  const match = DURATION_PATTERN.exec(trimmed);
  if (!match)
    throw new Error(`invalid duration "${text}" (expected a number and a unit: ms, s, m or h, like 250ms or 10s)`);
  const ms = Number(match[1]) * (DURATION_UNIT_MS[match[2]!] ?? 1);
  return Math.round(ms);
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
