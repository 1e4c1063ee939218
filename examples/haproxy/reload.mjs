// Reloads haproxy (master-worker mode, `haproxy -W -S /run/haproxy-master.sock ...`) through its master CLI.
//
//   node reload.mjs /run/haproxy-master.sock [timeoutMs]
//
// Why not SIGUSR2 to the master? haproxy 2.6 drops a SIGUSR2 that arrives while it is still re-executing for the
// previous one, so with changes a few hundred ms apart the last config may never be loaded (measured here: 6 rounds
// of 15). A CLI connection made during a reload waits in the socket's backlog, or is refused while the master
// re-executes; both are safe to retry because no reload was accepted. Exit 0 once haproxy took the command.
import { connect } from "node:net";

const [socketPath, timeoutText] = process.argv.slice(2);
const timeoutMs = Number(timeoutText ?? 5000);
if (!socketPath || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
  process.stderr.write("usage: node reload.mjs MASTER_SOCKET [timeoutMs]\n");
  process.exit(2);
}
/** Errors that mean "the master is between two lives": nothing was reloaded, try again. */
const RETRYABLE = new Set(["ECONNREFUSED", "ENOENT", "EAGAIN"]);
const RETRY_DELAY_MS = 20;
const deadline = Date.now() + timeoutMs;

function reloadOnce() {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let answer = "";
    let sent = false;
    socket.setTimeout(Math.max(1, deadline - Date.now()), () => socket.destroy(new Error("timed out")));
    socket.on("connect", () => {
      sent = true;
      socket.end("reload\n");
    });
    socket.on("data", (chunk) => {
      answer = (answer + chunk.toString("utf8")).slice(-4096);
    });
    // A reset once connected means the master is re-executing (for this reload or one already under way); either
    // way it reads the config after this moment, so the file written before this command is the one it loads.
    socket.on("error", (error) => (sent && error.code === "ECONNRESET" ? resolve(answer) : reject(error)));
    socket.on("close", () => resolve(answer));
  });
}

for (;;) {
  try {
    const answer = await reloadOnce();
    if (answer.trim() !== "") process.stdout.write(answer);
    process.exit(0);
  } catch (error) {
    if (!RETRYABLE.has(error.code) || Date.now() + RETRY_DELAY_MS > deadline) {
      process.stderr.write(`haproxy reload through ${socketPath}: ${error.message}\n`);
      process.exit(1);
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
  }
}
