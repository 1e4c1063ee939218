// A key range read in pages, all at one revision: a range may hold more than a client accepts in one answer
// (8 MiB by default), and its pages must still be one consistent view. Used by the sidecar's prefix loads and by
// `vigie backup`.
import type { RangeResult, StoreClient } from "../client.js";
import { ResponseTooLargeError } from "./transport.js";

/**
 * Keys per page (etcd's own mirror reads 1,000 at a time). A page larger than the client accepts is asked again
 * with half as many keys, down to one, which fits unless its value alone is over the limit.
 */
const PAGE_KEYS = 1000;

/**
 * The pages of [start, end), in key order, at `options.revision`, or at the first page's revision when none is
 * given (the caller reads it from that page's header).
 */
export async function* rangePages(
  client: StoreClient,
  start: Buffer,
  end: Buffer,
  options: { revision?: number | undefined; serializable?: boolean } = {},
): AsyncGenerator<RangeResult> {
  let from = start;
  let limit = PAGE_KEYS;
  let revision = options.revision;
  for (;;) {
    let page: RangeResult;
    try {
      page = await client.range(from, {
        rangeEnd: end,
        limit,
        ...(revision === undefined ? {} : { revision }),
        ...(options.serializable ? { serializable: true } : {}),
      });
    } catch (error) {
      if (error instanceof ResponseTooLargeError && limit > 1) {
        limit = Math.ceil(limit / 2);
        continue;
      }
      throw error;
    }
    revision ??= page.header.revision;
    yield page;
    const last = page.kvs.at(-1);
    if (!page.more || last === undefined) return;
    from = Buffer.concat([last.key, Buffer.from([0])]);
  }
}
