// The service registration metrics, registered once per agent (a registry refuses a name twice).
import type { Counter, Gauge, MetricsRegistry } from "../metrics.js";

export interface ServiceMetrics {
  /** Health check runs, by service, id and result (`pass` / `fail`). */
  checks: Counter;
  /** 1 while the instance's health is passing, 0 otherwise. */
  healthy: Gauge;
  /** Store requests for registration that failed (store unreachable or erroring). */
  storeErrors: Counter;
}

export function registerServiceMetrics(registry: MetricsRegistry): ServiceMetrics {
  return {
    checks: registry.counter("vigie_service_checks_total", "Health check runs by service, id and result"),
    healthy: registry.gauge("vigie_service_healthy", "1 while the service instance passes its health check"),
    storeErrors: registry.counter(
      "vigie_service_store_errors_total",
      "Registration requests to the store that failed, by service and id",
    ),
  };
}
