// `vigie render --once [--dry]`: render every template once from the store and exit, non-zero on any failure.
// With --dry the results go to stdout (each preceded by a `# ==> name -> destination` line when there are several)
// and nothing is written or reloaded; otherwise files are checked, written when changed, and reloads run.
import type { VigieConfig } from "../config/schema.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_UNAVAILABLE } from "../errors.js";
import type { Logger } from "../log.js";
import { MetricsRegistry } from "../metrics.js";
import { type ChangedFile, Reloader } from "../reload/reloader.js";
import { buildRuntimes } from "../sidecar/template-runtime.js";
import { StoreClient } from "../store/client.js";
import { StoreSync } from "../watch/sync.js";

export async function runRender(options: {
  config: VigieConfig;
  baseDir: string;
  endpoints: string[];
  once: boolean;
  dry: boolean;
  logger: Logger;
}): Promise<number> {
  const logger = options.logger.child({ component: "render" });
  const metrics = new MetricsRegistry();
  const client = new StoreClient({ endpoints: options.endpoints });
  // One mirror for all templates: they all render at the same revision.
  const sync = new StoreSync(client, logger, metrics, () => undefined);
  let failures = 0;
  // Failures because the store could not be read: when they are all there are, exit like every client command
  // whose store is unreachable (4), so a script can tell "store down" from "template broken" (1).
  let storeFailures = 0;
  const changed: ChangedFile[] = [];
  try {
    const runtimes = buildRuntimes(options.config.templates, options.baseDir);
    for (const runtime of runtimes) {
      if (!(await runtime.compile())) {
        failures += 1;
        logger.error(
          { template: runtime.name, stage: "compile", reason: runtime.compileError?.message },
          "render failed",
        );
        continue;
      }
      if (options.dry) {
        const outcome = await runtime.render(sync);
        if (outcome.kind === "failed") {
          failures += 1;
          if (outcome.stage === "store") storeFailures += 1;
          logger.error(
            { template: runtime.name, stage: outcome.stage, reason: outcome.error.message },
            "render failed",
          );
          continue;
        }
        if (runtimes.length > 1) process.stdout.write(`# ==> ${runtime.name} -> ${runtime.spec.destination}\n`);
        process.stdout.write(outcome.output);
        continue;
      }
      const outcome = await runtime.renderAndWrite(sync);
      if (outcome.kind === "failed") {
        failures += 1;
        if (outcome.stage === "store") storeFailures += 1;
        logger.error({ template: runtime.name, stage: outcome.stage, reason: outcome.error.message }, "render failed");
      } else if (outcome.kind === "written") {
        logger.info({ template: runtime.name, destination: runtime.spec.destination }, "file written");
        // `exec: true` targets the application vigie supervises in agent mode; `vigie render` supervises none.
        const reload = outcome.changed.reload;
        changed.push({ ...outcome.changed, reload: reload !== undefined && "exec" in reload ? undefined : reload });
      }
    }
    if (changed.length > 0) {
      const reloader = new Reloader(logger, metrics, () => undefined);
      for (const outcome of await reloader.reloadBatch(changed)) if (!outcome.ok) failures += 1;
    }
  } finally {
    sync.stop();
    await client.close();
  }
  if (failures === 0) return EXIT_OK;
  return failures === storeFailures ? EXIT_UNAVAILABLE : EXIT_FAILURE;
}
