// Template compilation and helpers: every helper, strictness on missing keys, dependency recording, safety limits.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { MissingKeyError, TemplateRenderError, TemplateSyntaxError } from "../../../src/render/errors.js";
import type { Entry, KeyReader } from "../../../src/render/reader.js";
import { compileTemplate, renderTemplate } from "../../../src/render/template.js";

/** A reader over a plain map, with an optional set of "loaded" prefixes to simulate data still loading. */
function reader(data: Record<string, string>, revision = 7, loaded?: string[], binary: string[] = []): KeyReader {
  const isLoaded = (key: string) => loaded === undefined || loaded.some((p) => key.startsWith(p));
  return {
    revision,
    notText: (key) => binary.includes(key),
    hasKey: isLoaded,
    hasPrefix: isLoaded,
    getKey: (key) => data[key],
    getPrefix: (prefix) =>
      Object.keys(data)
        .filter((key) => key.startsWith(prefix))
        .sort()
        .map((key): Entry => ({ key, name: key.slice(prefix.length), value: data[key]! })),
  };
}

function render(source: string, data: Record<string, string>, loaded?: string[]) {
  return renderTemplate(compileTemplate("t.hbs", source), reader(data, 7, loaded));
}

test("key, keyOrDefault, exists and @revision; output is not HTML-escaped", () => {
  const result = render(
    '{{key "/a"}} {{keyOrDefault "/b" "dflt"}} {{#if (exists "/a")}}yes{{/if}}{{#unless (exists "/c")}}no{{/unless}} r{{@revision}}',
    { "/a": "x&<y>" },
  );
  assert.is(result.output, "x&<y> dflt yesno r7");
  assert.equal([...result.deps.keys].sort(), ["/a", "/b", "/c"]);
  assert.ok(result.deps.complete);
});

test("key on a missing key fails with the key and the line and column", () => {
  try {
    render('line one\n  {{key "/missing"}}', {});
    assert.unreachable();
  } catch (error) {
    assert.instance(error, MissingKeyError);
    assert.match((error as Error).message, 't.hbs:2:3: key "/missing" does not exist');
  }
});

test("ls lists direct children, tree everything, both sorted with full key and name", () => {
  const data = { "/s/b": "2", "/s/a": "1", "/s/d/x": "3", "/t": "no" };
  const ls = render('{{#each (ls "/s")}}{{name}}={{value}};{{/each}}', data);
  assert.is(ls.output, "a=1;b=2;");
  assert.equal([...ls.deps.prefixes], ["/s/"]);
  const tree = render('{{#each (tree "/s/")}}{{key}}|{{name}};{{/each}}', data);
  assert.is(tree.output, "/s/a|a;/s/b|b;/s/d/x|d/x;");
});

test("ls and tree leave out the listed directory's own key (a 'folder' key like /s/), as consul-template", () => {
  const data = { "/s/": "folder", "/s/a": "1", "/s/d/": "sub", "/s/d/x": "2" };
  assert.is(render('{{#each (ls "/s")}}[{{name}}={{value}}]{{/each}}', data).output, "[a=1]");
  assert.is(render('{{#each (tree "/s")}}[{{name}}={{value}}]{{/each}}', data).output, "[a=1][d/=sub][d/x=2]");
});

test("service returns passing instances sorted by id and skips malformed ones", () => {
  const instance = (port: number, health: string) =>
    JSON.stringify({ address: `127.0.0.1:${port}`, host: "127.0.0.1", port, tags: ["v1"], meta: { az: "a" }, health });
  const data = {
    "/services/web/web-2": instance(8082, "passing"),
    "/services/web/web-1": instance(8081, "passing"),
    "/services/web/web-3": instance(8083, "critical"),
    "/services/web/web-4": "{not json",
    "/services/webx/w": instance(9999, "passing"),
  };
  const result = render(
    '{{#each (service "web")}}{{id}} {{name}} {{host}}:{{port}} {{join tags ","}} {{meta.az}}\n{{/each}}',
    data,
  );
  assert.is(result.output, "web-1 web 127.0.0.1:8081 v1 a\nweb-2 web 127.0.0.1:8082 v1 a\n");
  assert.equal([...result.deps.prefixes], ["/services/web/"]);
});

test("service leaves out instances whose id or host could inject config, and brackets IPv6", () => {
  const data = {
    "/services/api/ok": JSON.stringify({ host: "::1", port: 8080, health: "passing" }),
    "/services/api/bad-host": JSON.stringify({ host: "1.2.3.4;\n  server evil", port: 80, health: "passing" }),
    "/services/api/bad id": JSON.stringify({ host: "1.2.3.4", port: 80, health: "passing" }),
    "/services/api/bad-port": JSON.stringify({ host: "1.2.3.4", port: 70000, health: "passing" }),
  };
  const result = render('{{#each (service "api")}}{{id}} {{address}};{{/each}}', data);
  assert.is(result.output, "ok [::1]:8080;");
});

test("a value that is not UTF-8 text fails the render naming the key, instead of rendering replacement characters", () => {
  const data = { "/bin": "a\ufffd", "/dir/bin": "\ufffd", "/dir/ok": "fine", "/deep/x/bin": "\ufffd" };
  const run = (source: string) =>
    renderTemplate(compileTemplate("t.hbs", source), reader(data, 7, undefined, ["/bin", "/dir/bin", "/deep/x/bin"]));
  for (const source of [
    '{{key "/bin"}}',
    '\n {{keyOrDefault "/bin" "d"}}',
    '{{#each (ls "/dir")}}{{/each}}',
    '{{#each (tree "/deep")}}{{/each}}',
  ]) {
    assert.throws(
      () => run(source),
      (e: unknown) =>
        e instanceof TemplateRenderError &&
        /"\/(dir\/|deep\/x\/)?bin": the value is not UTF-8 text/.test((e as Error).message),
      source,
    );
  }
  // Only reading the value fails: existence, and a listing that leaves the key out, still render.
  assert.is(run('{{exists "/bin"}} {{#each (ls "/deep")}}x{{/each}}').output, "true ");
  assert.throws(
    () => run('{{base64Decode "Yf9i"}}'),
    (e: unknown) =>
      e instanceof TemplateRenderError &&
      /base64Decode: the decoded bytes are not UTF-8 text/.test((e as Error).message),
  );
});

test("phpString makes a single-quoted PHP literal", () => {
  const result = render('{{phpString (key "/p")}}', { "/p": "a'b\\c$d" });
  assert.is(result.output, "'a\\'b\\\\c$d'");
});

test("json, parseJson, env, default, join, split, sortBy, base64Decode", () => {
  process.env.VIGIE_TEST_ENV = "from-env";
  const result = render(
    [
      '{{json (key "/o")}}',
      '{{#with (parseJson (key "/o"))}}{{a}}{{/with}}',
      '{{env "VIGIE_TEST_ENV"}}',
      '{{default (keyOrDefault "/none") "fallback"}}',
      '{{join (split "c,a,b" ",") "+"}}',
      '{{#each (sortBy (parseJson (key "/list")) "n")}}{{n}}{{/each}}',
      '{{base64Decode "aMOpbGxv"}}',
    ].join("|"),
    { "/o": '{"a":1}', "/list": '[{"n":3},{"n":1},{"n":2}]' },
  );
  assert.is(result.output, '"{\\"a\\":1}"|1|from-env|fallback|c+a+b|123|héllo');
});

test("reads of data not loaded yet are recorded and mark the render incomplete", () => {
  const result = render('{{key "/db/x"}}{{#each (ls "/svc/")}}{{/each}}{{keyOrDefault "/loaded/y" "d"}}', {}, [
    "/loaded/",
  ]);
  assert.not.ok(result.deps.complete);
  assert.equal([...result.deps.missingKeys], ["/db/x"]);
  assert.equal([...result.deps.missingPrefixes], ["/svc/"]);
});

test("syntax errors name the template, line and column", () => {
  try {
    compileTemplate("bad.hbs", "ok\n{{#if x}}\nno close");
    assert.unreachable();
  } catch (error) {
    assert.instance(error, TemplateSyntaxError);
    assert.match((error as Error).message, /^bad\.hbs:\d+:\d+: template syntax error/);
  }
  try {
    compileTemplate("bad2.hbs", 'a\nb {{key "/x"');
    assert.unreachable();
  } catch (error) {
    assert.match((error as Error).message, /^bad2\.hbs:2:/);
  }
});

test("templates cannot reach prototypes or constructors", () => {
  const result = render(
    '{{#with (parseJson (key "/o"))}}[{{constructor}}][{{__proto__}}][{{constructor.name}}]{{/with}}',
    { "/o": "{}" },
  );
  assert.is(result.output, "[][][]");
});

test("output larger than the limit fails the render", () => {
  const template = compileTemplate("big.hbs", '{{#each (tree "/")}}{{value}}{{/each}}');
  const data: Record<string, string> = {};
  for (let i = 0; i < 20; i++) data[`/k${i}`] = "x".repeat(1000);
  assert.throws(
    () => renderTemplate(template, reader(data), undefined, 10_000),
    (e: unknown) => e instanceof TemplateRenderError,
  );
});

test("a helper given a bad argument fails with a clear message", () => {
  assert.throws(
    () => render("{{join 5}}", {}),
    (e: unknown) => e instanceof TemplateRenderError && /join: expected a list/.test((e as Error).message),
  );
});

test.run();
