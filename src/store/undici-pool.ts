// undici's Pool without undici's index. The index loads all of undici (fetch, WebSocket, EventSource, caches, mock
// agents, the SQLite cache store...) and, through the web globals it touches, the second copy of undici that is
// built into node: about 7 MB of resident memory in every agent that only ever uses Pool.request/stream.
// This loads the pool and attaches the request API to the dispatcher prototype, as undici's index.js does.
import { createRequire } from "node:module";
import type { Pool as UndiciPool } from "undici";

const require = createRequire(import.meta.url);
const Dispatcher = require("undici/lib/dispatcher/dispatcher.js") as { prototype: object };
const api = require("undici/lib/api/index.js") as object;
Object.assign(Dispatcher.prototype, api);

export const Pool = require("undici/lib/dispatcher/pool.js") as typeof UndiciPool;
export type Pool = UndiciPool;
