// Starts a real etcd 3.4 (Debian's etcd-server) on loopback for tests that compare vigie with etcd or run the
// sidecar against it. Each instance gets its own temp data dir and free ports, and is killed on stop().
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "./ports.js";
import { findExecutable } from "./require-tool.js";

export interface EtcdProcess {
  clientUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function startEtcd(options: { name?: string } = {}): Promise<EtcdProcess> {
  const binary = findExecutable("etcd");
  if (!binary) throw new Error("etcd is not installed (apt-get install -y etcd-server)");
  const dataDir = await mkdtemp(join(tmpdir(), "vigie-etcd-"));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const name = options.name ?? "etcd-test";
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const child = spawn(
    binary,
    [
      "--name",
      name,
      "--data-dir",
      dataDir,
      "--listen-client-urls",
      clientUrl,
      "--advertise-client-urls",
      clientUrl,
      "--listen-peer-urls",
      peerUrl,
      "--initial-advertise-peer-urls",
      peerUrl,
      "--initial-cluster",
      `${name}=${peerUrl}`,
      "--log-level",
      "error",
    ],
    {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.env.ETCD_UNSUPPORTED_ARCH ?? "" },
    },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      `etcd on ${clientUrl}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`etcd exited with ${child.exitCode}: ${stderr}`);
        const response = await fetch(`${clientUrl}/health`);
        const body = (await response.json()) as { health?: string };
        return body.health === "true";
      },
      15_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { clientUrl, process: child, stop };
}
