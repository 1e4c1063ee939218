// Property: after any load and any sequence of puts and deletes, the mirror answers every loaded key and prefix
// exactly as a plain map of the whole store would, and reports a change exactly when a covered value changed.
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StoreMirror } from "../../../src/watch/mirror.js";

const segment = fc.constantFrom("a", "b", "c");
const key = fc
  .tuple(segment, segment, fc.option(segment, { nil: undefined }))
  .map(([x, y, z]) => `/${x}/${y}${z === undefined ? "" : `/${z}`}`);
const prefix = fc
  .tuple(segment, fc.option(segment, { nil: undefined }))
  .map(([x, y]) => `/${x}/${y === undefined ? "" : `${y}/`}`);
const op = fc.record({ key, value: fc.option(fc.constantFrom("1", "2", "3"), { nil: undefined }) });

test("the mirror matches a model of the store", () => {
  fc.assert(
    fc.property(
      fc.dictionary(key, fc.constantFrom("1", "2")),
      fc.uniqueArray(key, { maxLength: 4 }),
      fc.uniqueArray(prefix, { maxLength: 3 }),
      fc.array(op, { maxLength: 40 }),
      (initial, loadedKeys, loadedPrefixes, ops) => {
        const store = new Map<string, string>(Object.entries(initial));
        const mirror = new StoreMirror();
        for (const k of loadedKeys) {
          const value = store.get(k);
          mirror.loadKey(k, value === undefined ? undefined : { value, modRevision: 1 });
        }
        for (const p of loadedPrefixes) {
          const found = [...store]
            .filter(([k]) => k.startsWith(p))
            .map(([k, value]) => [k, { value, modRevision: 1 }] as [string, { value: string; modRevision: number }]);
          mirror.loadPrefix(p, found);
        }
        mirror.revision = 1;
        const covered = (k: string) => loadedKeys.includes(k) || loadedPrefixes.some((p) => k.startsWith(p));
        let revision = 1;
        for (const { key: k, value } of ops) {
          revision += 1;
          const before = store.get(k);
          if (value === undefined) store.delete(k);
          else store.set(k, value);
          const changed = mirror.apply(k, value, revision);
          mirror.revision = revision;
          assert.is(changed, covered(k) && before !== value, `change reported for ${k}`);
        }
        for (const k of loadedKeys) assert.is(mirror.getKey(k), store.get(k));
        for (const p of loadedPrefixes) {
          const expected = [...store.keys()].filter((k) => k.startsWith(p)).sort();
          assert.equal(
            mirror.getPrefix(p).map((entry) => entry.key),
            expected,
          );
          for (const entry of mirror.getPrefix(p)) {
            assert.is(entry.value, store.get(entry.key));
            assert.is(entry.name, entry.key.slice(p.length));
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});

test.run();
