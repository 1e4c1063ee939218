// Service registration for the agent: one ServiceRegistration per `services:` entry of the config.
//
//   const services = startServices({ services: config.services, client, logger, metrics });
//   ...
//   await services.stop();   // on SIGTERM, before anything else: revokes the leases so load balancers drop us first
//
// Each instance lives at `/services/<name>/<id>` (see instance.ts for the value and the default id).
import type { ServiceConfig } from "../config/schema.js";
import { ConfigError } from "../errors.js";
import type { Logger } from "../log.js";
import { MetricsRegistry } from "../metrics.js";
import { INSTANCE_ID_MAX_CHARS } from "../render/reader.js";
import { splitHostPort } from "./checks.js";
import { instanceId } from "./instance.js";
import { registerServiceMetrics } from "./metrics.js";
import { type RegistryStore, ServiceRegistration, type ServiceStatus } from "./registration.js";

export type { CheckResult } from "./checks.js";
export { runCheck, splitHostPort } from "./checks.js";
export type { AnnouncedHealth, Health } from "./health.js";
export {
  defaultInstanceId,
  instanceKey,
  MalformedServiceError,
  parseInstance,
  SERVICES_PREFIX,
  type ServiceInstance,
} from "./instance.js";
export type { RegistryStore, ServiceStatus } from "./registration.js";

export interface StartServicesOptions {
  services: ServiceConfig[];
  /** A StoreClient (vigie's embedded replica, a vigie cluster or etcd). */
  client: RegistryStore;
  logger: Logger;
  /** Where the `vigie_service_*` metrics go; a private registry when omitted. */
  metrics?: MetricsRegistry;
}

export interface RunningServices {
  /** Deregisters every instance (revokes its lease) and stops every check and timer. Idempotent. */
  stop(): Promise<void>;
  status(): ServiceStatus[];
}

/**
 * Validates the instances (distinct ids, usable addresses) and starts checking and registering each one.
 * Throws ConfigError before starting anything when the list is unusable.
 */
export function startServices(options: StartServicesOptions): RunningServices {
  validateServices(options.services);
  const logger = options.logger.child({ component: "services" });
  const metrics = registerServiceMetrics(options.metrics ?? new MetricsRegistry());
  const registrations = options.services.map(
    (service) => new ServiceRegistration(service, options.client, logger, metrics),
  );
  for (const registration of registrations) registration.start();
  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= Promise.all(registrations.map((registration) => registration.stop())).then(() => undefined);
      return stopping;
    },
    status: () => registrations.map((registration) => registration.status()),
  };
}

/** A check run more often than this is a busy loop (0 ran checks back to back), not a health check. */
const CHECK_INTERVAL_MIN_MS = 10;

function validateServices(services: ServiceConfig[]): void {
  const seen = new Map<string, number>();
  services.forEach((service, index) => {
    // The schema accepts any duration; these would crash an assertion or spin, so they are config errors here.
    if (service.ttl <= 0) throw new ConfigError(`services[${index}].ttl: must be more than 0`);
    if (service.check !== undefined && service.check.timeout <= 0) {
      throw new ConfigError(`services[${index}].check.timeout: must be more than 0`);
    }
    if (service.check !== undefined && service.check.interval < CHECK_INTERVAL_MIN_MS) {
      throw new ConfigError(`services[${index}].check.interval: must be at least ${CHECK_INTERVAL_MIN_MS} ms`);
    }
    try {
      splitHostPort(service.address);
    } catch (error) {
      throw new ConfigError(`services[${index}].address: ${(error as Error).message}`);
    }
    const id = instanceId(service);
    if (id.length > INSTANCE_ID_MAX_CHARS) {
      throw new ConfigError(
        `services[${index}]: instance id "${id}" is longer than ${INSTANCE_ID_MAX_CHARS} characters; give a shorter id ` +
          "(templates leave such instances out)",
      );
    }
    const key = `${service.name}/${id}`;
    const previous = seen.get(key);
    if (previous !== undefined) {
      throw new ConfigError(
        `services[${index}]: instance ${key} is already declared by services[${previous}]; give one of them an id`,
      );
    }
    seen.set(key, index);
  });
}
