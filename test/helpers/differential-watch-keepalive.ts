// Differential scenarios for the `/v3/lease/keepalive` stream (used by test/integration/differential-watch.test.ts):
// a run grants a live lease and a lease it revokes at once, then sends one stream of keepalive messages (the live
// lease, the revoked one, one never granted, ID 0, a message without ID, malformed ones) in one write followed by
// the end of the body (see differential-watch-scenario.ts on why one write), and reads the answers until the stream
// ends. Observations are normalised like the watch runner's.
import assert from "node:assert";
import fc from "fast-check";
import { call, StreamSession } from "./api-client.js";
import { currentRevision, normalise } from "./differential-watch-runner.js";
import { MALFORMED } from "./differential-watch-scenario.js";

export type KeepAliveMessage =
  | { kind: "live" | "revoked" | "unknown" | "zero" | "negative" | "empty" | "number" }
  | { kind: "malformed"; text: string };

export interface KeepAliveObservation {
  status: number | undefined;
  lines: unknown[];
  ended: boolean;
}

export const keepAliveScenarioArbitrary: fc.Arbitrary<KeepAliveMessage[]> = fc.array(
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc
        .constantFrom("live", "revoked", "unknown", "zero", "negative", "empty", "number")
        .map((kind) => ({ kind }) as KeepAliveMessage),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(...MALFORMED, '{"ID":"x"}', '{"ID":true}')
        .map((text) => ({ kind: "malformed", text }) as KeepAliveMessage),
    },
  ),
  { minLength: 1, maxLength: 6 },
);

/** Lease ids of run `runIndex`: live, revoked, never granted (the same on both targets). */
function leaseIds(runIndex: number): { live: string; revoked: string; unknown: string } {
  return {
    live: String(800_000 + 3 * runIndex),
    revoked: String(800_001 + 3 * runIndex),
    unknown: String(800_002 + 3 * runIndex),
  };
}

export function keepAliveBody(messages: KeepAliveMessage[], runIndex: number): string {
  const ids = leaseIds(runIndex);
  return messages
    .map((message) => {
      switch (message.kind) {
        case "live":
        case "revoked":
        case "unknown":
          return JSON.stringify({ ID: ids[message.kind] });
        case "zero":
          return '{"ID":"0"}';
        case "negative":
          return '{"ID":"-5"}';
        case "empty":
          return "{}";
        case "number":
          return `{"ID":${ids.live}}`;
        default:
          return message.text; // malformed
      }
    })
    .join("\n");
}

/** How long the stream may take to end after its body ended. */
const END_MAX_MS = 3_000;

export async function runKeepAliveScenario(
  url: string,
  messages: KeepAliveMessage[],
  runIndex: number,
): Promise<KeepAliveObservation> {
  const ids = leaseIds(runIndex);
  for (const id of [ids.live, ids.revoked]) {
    const grant = await call(url, "/v3/lease/grant", { ID: id, TTL: "600" });
    assert.equal(grant.status, 200, `lease grant: ${grant.text}`);
  }
  await call(url, "/v3/lease/revoke", { ID: ids.revoked });
  const base = await currentRevision(url);
  const stream = new StreamSession(url, "/v3/lease/keepalive");
  const lines: unknown[] = [];
  try {
    stream.send(keepAliveBody(messages, runIndex));
    stream.finish();
    const deadline = Date.now() + END_MAX_MS;
    for (;;) {
      const left = deadline - Date.now();
      let line: string | undefined;
      try {
        line = await stream.nextLine(Math.max(left, 1));
      } catch {
        break; // still open after END_MAX_MS: recorded as not ended
      }
      if (line === undefined) break;
      let parsed: unknown = line;
      try {
        parsed = JSON.parse(line);
      } catch {
        // kept as text
      }
      lines.push(normalise(parsed, base));
    }
    return { status: stream.status, lines, ended: stream.hasEnded };
  } finally {
    stream.close();
    await call(url, "/v3/lease/revoke", { ID: ids.live });
  }
}
