// Raw HTTP access to an etcd v3 JSON gateway for the compatibility suite: unary calls that return the status and
// the exact body, and streaming sessions (watch, keepalive) where the test writes messages and reads lines.
// Deliberately NOT src/store/client.ts: the suite must see the wire as it is, not as a client decodes it.
import { type ClientRequest, type IncomingMessage, request } from "node:http";

export interface RawAnswer {
  status: number;
  contentType: string;
  text: string;
  /** The parsed body, or undefined when it is not JSON (404 pages are text). */
  json: Record<string, unknown> | undefined;
  headers: Headers;
}

export async function rawCall(
  baseUrl: string,
  path: string,
  body: string | Buffer | undefined,
  method = "POST",
): Promise<RawAnswer> {
  const response = await fetch(`${baseUrl}${path}`, { method, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return {
    status: response.status,
    contentType: response.headers.get("content-type") ?? "",
    text,
    json,
    headers: response.headers,
  };
}

export async function call(baseUrl: string, path: string, body: unknown): Promise<RawAnswer> {
  return await rawCall(baseUrl, path, JSON.stringify(body));
}

/** A streaming POST: messages written one at a time, answers read line by line (`{"result":...}`). */
export class StreamSession {
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  private partial = "";
  private ended = false;
  private readonly clientRequest: ClientRequest;
  status: number | undefined;

  constructor(baseUrl: string, path: string) {
    const url = new URL(path, baseUrl);
    this.clientRequest = request(url, { method: "POST", headers: { "content-type": "application/json" } });
    this.clientRequest.on("error", () => {
      this.ended = true;
      this.wake();
    });
    this.clientRequest.on("response", (response: IncomingMessage) => {
      this.status = response.statusCode;
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        this.partial += chunk;
        // Split on newlines; also cut between concatenated objects ("}{"), which etcd emits for stream errors.
        for (;;) {
          const newline = this.partial.indexOf("\n");
          if (newline === -1) break;
          const line = this.partial.slice(0, newline).trim();
          this.partial = this.partial.slice(newline + 1);
          if (line !== "") this.lines.push(line);
        }
        this.wake();
      });
      response.on("end", () => {
        if (this.partial.trim() !== "") this.lines.push(this.partial.trim());
        this.partial = "";
        this.ended = true;
        this.wake();
      });
      response.on("error", () => {
        this.ended = true;
        this.wake();
      });
    });
    this.clientRequest.flushHeaders();
  }

  send(message: unknown): void {
    this.clientRequest.write(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** Ends the request body (the client's half of the stream). */
  finish(): void {
    this.clientRequest.end();
  }

  /** The next line parsed as JSON; throws when nothing arrives within `timeoutMs`. */
  async next(timeoutMs = 5_000): Promise<Record<string, unknown>> {
    const line = await this.nextLine(timeoutMs);
    if (line === undefined) throw new Error("stream ended");
    return JSON.parse(line) as Record<string, unknown>;
  }

  /** The next raw line, or undefined once the stream ended. */
  async nextLine(timeoutMs = 5_000): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    let lastLook = false;
    while (this.lines.length === 0 && !this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) {
        if (lastLook) throw new Error(`no stream message within ${timeoutMs} ms`);
        // After a stall of this process, the expired timer runs before the socket's pending data is read: let the
        // loop's poll phase read it once before calling the stream quiet.
        lastLook = true;
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.lines.shift();
  }

  /** Asserts nothing more arrives within `quietMs` (returns the unexpected line otherwise). */
  async quiet(quietMs: number): Promise<string | undefined> {
    try {
      return await this.nextLine(quietMs);
    } catch {
      return undefined;
    }
  }

  get hasEnded(): boolean {
    return this.ended && this.lines.length === 0;
  }

  close(): void {
    this.clientRequest.destroy();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}

/**
 * Waits `firstWaitMs`, then until etcd has no unsynced watcher left (its `etcd_debugging_mvcc_slow_watcher_total`
 * gauge: a watcher from the past is synced, or cancelled as compacted, every 100 ms, later on a loaded machine).
 * vigie syncs a watcher when it is created and has no such gauge: for vigie the first wait is all.
 */
export async function untilWatchersSynced(url: string, firstWaitMs: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  await new Promise((resolve) => setTimeout(resolve, firstWaitMs));
  for (;;) {
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const unsynced = /^etcd_debugging_mvcc_slow_watcher_total (\d+)$/m.exec(metrics);
    if (unsynced === null || unsynced[1] === "0") return;
    if (Date.now() > deadline) throw new Error(`etcd still has ${unsynced[1]} unsynced watchers after 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
