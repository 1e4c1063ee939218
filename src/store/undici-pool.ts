// undici's Pool without undici's index. The index loads all of undici (fetch, WebSocket, EventSource, caches, mock
// agents, the SQLite cache store...) and, through the web globals it touches, the second copy of undici that is
// built into node: about 7 MB of resident memory in every agent that only ever uses Pool.request/stream.
// This loads the pool and attaches the request API to the dispatcher prototype, as undici's index.js does.
import { createRequire, Module } from "node:module";
import type { Pool as UndiciPool } from "undici";

const require = createRequire(import.meta.url);

// undici's HTTP/2 half requires node:http2 when it loads, and with it tls, dns, cluster and node's crypto internals:
// ~0.7 MB resident in every agent. Its one export, connectH2, is called only for a TLS connection that negotiated h2
// through ALPN, which undici offers only with `allowH2` (off by default, never set by vigie). So the pool's client
// gets a stand-in, registered before the pool loads, that loads the real module the first time it is called.
export const H2_MODULE_PATH = require.resolve("undici/lib/dispatcher/client-h2.js");
if (require.cache[H2_MODULE_PATH] === undefined) {
  const standIn = new Module(H2_MODULE_PATH);
  standIn.filename = H2_MODULE_PATH;
  standIn.loaded = true;
  standIn.exports = function connectH2(...args: unknown[]): unknown {
    if (require.cache[H2_MODULE_PATH] === standIn) delete require.cache[H2_MODULE_PATH];
    const real = require(H2_MODULE_PATH) as (...args: unknown[]) => unknown;
    return real(...args);
  };
  require.cache[H2_MODULE_PATH] = standIn;
}
const Dispatcher = require("undici/lib/dispatcher/dispatcher.js") as { prototype: object };
const api = require("undici/lib/api/index.js") as object;
Object.assign(Dispatcher.prototype, api);

export const Pool = require("undici/lib/dispatcher/pool.js") as typeof UndiciPool;
export type Pool = UndiciPool;
