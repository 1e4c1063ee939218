// The floor under issue 6's put → file and put → signal targets on this machine: the least any durable design has to
// do, in one small process and nothing else. A put is answered only after its log record is fdatasynced (as etcd and
// vigie's store do); then the file is staged, fdatasynced and renamed into place (as vigie's writer and
// consul-template do), the application is signalled, and the directory is fsynced. No Raft, no watch stream, no
// template: what remains is loopback HTTP, three fsyncs, a rename and a signal, and the wake-ups between them. The
// sidecar bench drives it with the same client and clocks as the real agent, so its row shows how much of the
// targets this disk and scheduler leave to everything else.
// Usage (the bench starts it): node --import tsx scripts/durable-floor.ts DIR PORT PIDFILE
import { close, closeSync, fdatasyncSync, fsync, open, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";

const [dir, port, pidfile] = process.argv.slice(2);
if (dir === undefined || port === undefined || pidfile === undefined) {
  throw new Error("usage: durable-floor.ts DIR PORT PIDFILE");
}
const log = openSync(join(dir, "floor.log"), "a");
const destination = join(dir, "out.conf");
let revision = 0;

createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    const body = Buffer.concat(chunks);
    writeSync(log, body);
    fdatasyncSync(log);
    revision++;
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify({ header: { revision: String(revision) } }));
    const { value } = JSON.parse(body.toString()) as { value?: string };
    const staged = join(dir, `.out.conf.${revision}.tmp`);
    const fd = openSync(staged, "wx", 0o644);
    writeSync(fd, `value=${Buffer.from(value ?? "", "base64").toString()} revision=${revision}\n`);
    fdatasyncSync(fd);
    closeSync(fd);
    renameSync(staged, destination);
    process.kill(Number(readFileSync(pidfile, "utf8")), "SIGHUP");
    // The rename made durable (issue 6 asks for the directory fsync), after the signal and in the thread pool.
    open(dir, "r", (openError, directory) => {
      if (openError) throw openError;
      fsync(directory, () => close(directory, () => undefined));
    });
  });
}).listen(Number(port), "127.0.0.1");
