// The mirror: loaded keys and prefixes, sorted listings kept current by events, stale events ignored.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StoreMirror } from "../../../src/watch/mirror.js";

function mirror(): StoreMirror {
  const m = new StoreMirror();
  m.loadKey("/db/master", { value: "a", modRevision: 3 });
  m.loadKey("/db/absent", undefined);
  m.loadPrefix("/svc/", [
    ["/svc/b", { value: "2", modRevision: 4 }],
    ["/svc/a", { value: "1", modRevision: 2 }],
  ]);
  m.revision = 5;
  return m;
}

test("answers loaded keys and prefixes, sorted", () => {
  const m = mirror();
  assert.ok(m.hasKey("/db/master") && m.hasKey("/db/absent") && m.hasKey("/svc/zzz"));
  assert.not.ok(m.hasKey("/db/other"));
  assert.ok(m.hasPrefix("/svc/") && m.hasPrefix("/svc/sub/"));
  assert.not.ok(m.hasPrefix("/db/"));
  assert.is(m.getKey("/db/absent"), undefined);
  assert.equal(
    m.getPrefix("/svc/").map((e) => `${e.name}=${e.value}`),
    ["a=1", "b=2"],
  );
});

test("events update values and listings; old and uncovered events are ignored", () => {
  const m = mirror();
  const before = m.getPrefix("/svc/");
  assert.not.ok(m.apply("/svc/c", "3", 5), "at or below the mirror revision: already loaded");
  assert.not.ok(m.apply("/other", "x", 6), "not covered");
  assert.ok(m.apply("/svc/c", "3", 6));
  assert.ok(m.apply("/svc/a", undefined, 6));
  assert.not.ok(m.apply("/db/absent", undefined, 6), "deleting an absent key changes nothing");
  assert.not.ok(m.apply("/db/master", "a", 7), "same value");
  assert.ok(m.apply("/db/absent", "now", 7));
  assert.is.not(m.getPrefix("/svc/"), before);
  assert.equal(
    m.getPrefix("/svc/").map((e) => e.key),
    ["/svc/b", "/svc/c"],
  );
  assert.equal(
    m.getPrefix("/svc/").map((e) => e.key),
    ["/svc/b", "/svc/c"],
  );
  assert.is(m.getKey("/db/absent"), "now");
});

test("a value that is not UTF-8 text is marked, and going from binary to text (same decoded string) is a change", () => {
  const m = mirror();
  assert.not.ok(m.notText("/db/master"));
  m.loadKey("/bin", { value: "a\ufffd", modRevision: 2, notText: true });
  assert.ok(m.notText("/bin"));
  assert.ok(m.apply("/svc/c", "\ufffd", 6, true));
  assert.ok(m.notText("/svc/c"));
  // The same replacement characters, now really in the text: the template's answer changes (it no longer fails).
  assert.ok(m.apply("/svc/c", "\ufffd", 7, false));
  assert.not.ok(m.notText("/svc/c"));
  assert.ok(m.apply("/svc/c", undefined, 8));
  assert.not.ok(m.notText("/svc/c"));
});

test("listing a sub-prefix of a loaded prefix filters it", () => {
  const m = mirror();
  m.apply("/svc/sub/x", "9", 6);
  assert.equal(
    m.getPrefix("/svc/sub/").map((e) => e.name),
    ["x"],
  );
});

test("absorb takes over a scratch mirror's keys, absences and prefixes", () => {
  const m = mirror();
  const scratch = new StoreMirror();
  scratch.loadKey("/new/k", { value: "v", modRevision: 4 });
  scratch.loadKey("/new/absent", undefined);
  scratch.loadPrefix("/other/", [["/other/x", { value: "1", modRevision: 2 }]]);
  m.absorb(scratch);
  assert.is(m.getKey("/new/k"), "v");
  assert.ok(m.hasKey("/new/absent"));
  assert.is(m.getKey("/new/absent"), undefined);
  assert.equal(
    m.getPrefix("/other/").map((e) => e.key),
    ["/other/x"],
  );
  assert.is(m.revision, 5, "absorbing does not move the revision");
});

test.run();
