// What a service instance looks like in the store: key `/services/<name>/<id>`, value a JSON object
// `{address, host, port, tags, meta, health}`. The agent writes it (registration.ts); `vigie services` and the
// `service` template helper read it. One place defines the layout so writers and readers cannot drift apart.
import type { ServiceConfig } from "../config/schema.js";
import { VigieError } from "../errors.js";
import { splitHostPort } from "./checks.js";
import type { AnnouncedHealth } from "./health.js";

export const SERVICES_PREFIX = "/services/";

export interface ServiceInstance {
  name: string;
  id: string;
  address: string;
  host: string;
  port: number;
  tags: string[];
  meta: Record<string, string>;
  health: AnnouncedHealth;
}

/** The stored value: the instance without its name and id, which are already in the key. */
export type ServiceValue = Omit<ServiceInstance, "name" | "id">;

/** A service instance read from the store whose value does not have the documented shape. */
export class MalformedServiceError extends VigieError {
  constructor(key: string, reason: string) {
    super("VIGIE_ERR_SERVICE_MALFORMED", `${key}: not a service instance (${reason})`);
  }
}

/**
 * The instance id when the config gives none: `<name>-<host>-<port>` from the address, with any character that is not
 * a letter, digit, '.', '_' or '-' (IPv6 colons) turned into '_'. It depends only on the config, so an agent that
 * restarts overwrites its own entry instead of leaving a twin behind; it is unique as long as addresses are.
 * Example: `web` at `127.0.0.1:8081` → `web-127.0.0.1-8081`; at `[::1]:80` → `web-__1-80`.
 */
export function defaultInstanceId(name: string, address: string): string {
  const { host, port } = splitHostPort(address);
  return `${name}-${host.replace(/[^A-Za-z0-9._-]/g, "_")}-${port}`;
}

export function instanceId(service: ServiceConfig): string {
  return service.id ?? defaultInstanceId(service.name, service.address);
}

export function instanceKey(name: string, id: string): string {
  return `${SERVICES_PREFIX}${name}/${id}`;
}

export function instanceValue(service: ServiceConfig, health: AnnouncedHealth): ServiceValue {
  const { host, port } = splitHostPort(service.address);
  return { address: service.address, host, port, tags: [...service.tags], meta: { ...service.meta }, health };
}

/** Parses one key-value under `/services/`; throws `MalformedServiceError` naming the key when it is not an instance. */
export function parseInstance(key: string, value: string): ServiceInstance {
  if (!key.startsWith(SERVICES_PREFIX)) throw new MalformedServiceError(key, `key is not under ${SERVICES_PREFIX}`);
  const parts = key.slice(SERVICES_PREFIX.length).split("/");
  if (parts.length !== 2 || parts[0] === "" || parts[1] === "")
    throw new MalformedServiceError(key, "key is not /services/<name>/<id>");
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new MalformedServiceError(key, "value is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new MalformedServiceError(key, "value is not a JSON object");
  const object = parsed as Record<string, unknown>;
  if (typeof object.address !== "string") throw new MalformedServiceError(key, "address is not a string");
  const { host, port } = splitHostPortOr(key, object.address);
  const health = object.health === "passing" || object.health === "critical" ? object.health : undefined;
  if (health === undefined) throw new MalformedServiceError(key, `health is ${JSON.stringify(object.health)}`);
  const tags = Array.isArray(object.tags) ? object.tags.filter((tag): tag is string => typeof tag === "string") : [];
  const meta: Record<string, string> = {};
  if (typeof object.meta === "object" && object.meta !== null && !Array.isArray(object.meta)) {
    for (const [field, text] of Object.entries(object.meta)) if (typeof text === "string") meta[field] = text;
  }
  return { name: parts[0]!, id: parts[1]!, address: object.address, host, port, tags, meta, health };
}

function splitHostPortOr(key: string, address: string): { host: string; port: number } {
  try {
    return splitHostPort(address);
  } catch (error) {
    throw new MalformedServiceError(key, (error as Error).message);
  }
}
