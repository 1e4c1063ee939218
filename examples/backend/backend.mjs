// A tiny HTTP backend for the scenarios and the demo: answers every request with its name, and `/health` with 200.
//
//   node backend.mjs NAME PORT
//
// Kill it (any signal) and its health check fails, which is the point.
import { createServer } from "node:http";

const [name, portText] = process.argv.slice(2);
const port = Number(portText);
if (!name || !Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write("usage: node backend.mjs NAME PORT\n");
  process.exit(2);
}

const server = createServer((request, response) => {
  response.setHeader("content-type", "text/plain");
  response.setHeader("connection", "close");
  response.end(request.url === "/health" ? "ok\n" : `${name}\n`);
});
server.listen(port, "127.0.0.1", () => process.stdout.write(`${name} listening on 127.0.0.1:${port}\n`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
