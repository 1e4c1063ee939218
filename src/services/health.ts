// The health state of one service instance, from its check results, with thresholds against flapping: the state
// changes only after `healthy_threshold` passes in a row (to passing) or `unhealthy_threshold` failures in a row
// (to critical). Pure: no timers, no I/O, so the rules are unit-tested on sequences of results.
import assert from "node:assert/strict";

/**
 * `pending`: no decision yet (the agent just started and the thresholds are not met); the instance is not announced.
 * `passing`: announced and kept alive. `critical`: announced as failing; its lease is left to expire.
 */
export type Health = "pending" | "passing" | "critical";

/** The values written to the store (`health` in `/services/<name>/<id>`); the `service` template helper keeps "passing". */
export type AnnouncedHealth = Exclude<Health, "pending">;

export class HealthTracker {
  private state: Health = "pending";
  private passesInARow = 0;
  private failuresInARow = 0;

  constructor(
    private readonly healthyThreshold: number,
    private readonly unhealthyThreshold: number,
  ) {
    assert.ok(Number.isInteger(healthyThreshold) && healthyThreshold >= 1, "healthy_threshold must be >= 1");
    assert.ok(Number.isInteger(unhealthyThreshold) && unhealthyThreshold >= 1, "unhealthy_threshold must be >= 1");
  }

  get health(): Health {
    return this.state;
  }

  /** Records one check result; returns the new state when it changed, otherwise undefined. */
  record(passing: boolean): Health | undefined {
    if (passing) {
      this.failuresInARow = 0;
      this.passesInARow = Math.min(this.passesInARow + 1, this.healthyThreshold);
      if (this.state !== "passing" && this.passesInARow >= this.healthyThreshold) return this.become("passing");
    } else {
      this.passesInARow = 0;
      this.failuresInARow = Math.min(this.failuresInARow + 1, this.unhealthyThreshold);
      if (this.state !== "critical" && this.failuresInARow >= this.unhealthyThreshold) return this.become("critical");
    }
    return undefined;
  }

  private become(next: Health): Health {
    this.state = next;
    return next;
  }
}
