// Template and config files mounted the way Kubernetes mounts a ConfigMap: `s.hbs -> ..data/s.hbs`, and an update
// swaps the `..data` symlink to a new directory in one rename. The file's own inode never changes, so only a watch on
// its directory sees the update. Against a real etcd.
import { mkdir, readFile, rename, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { harnessSuite, settle } from "../fixtures/sidecar/harness.js";
import { requireTools } from "../helpers/require-tool.js";

const tools = requireTools("sidecar file watch", "etcd");
const { test, t } = harnessSuite("sidecar file watch", "etcd", tools !== undefined);

/** A ConfigMap-like mount in `dir`: version directories, the `..data` link, and one link per file. */
async function configMap(
  dir: string,
  files: Record<string, string>,
): Promise<(next: Record<string, string>) => Promise<void>> {
  let version = 0;
  const publish = async (content: Record<string, string>) => {
    version += 1;
    const versionDir = join(dir, `..v${version}`);
    await mkdir(versionDir, { recursive: true });
    for (const [name, text] of Object.entries(content)) await writeFile(join(versionDir, name), text);
    await symlink(`..v${version}`, join(dir, "..data_tmp"));
    await rename(join(dir, "..data_tmp"), join(dir, "..data"));
  };
  await mkdir(dir, { recursive: true });
  await publish(files);
  for (const name of Object.keys(files)) await symlink(join("..data", name), join(dir, name));
  return publish;
}

t("a template updated by a symlink swap (a ConfigMap update) is read again and rendered", async (h) => {
  await h.client.put("/cm/v", "x");
  const mount = join(h.dir, "cm");
  const publish = await configMap(mount, { "s.hbs": 'one={{key "/cm/v"}}\n' });
  await h.start({ templates: [{ source: "cm/s.hbs", destination: "out/s.conf" }] });
  const path = join(h.dir, "out", "s.conf");
  await h.waitForFile(path, (text) => text === "one=x\n");
  await publish({ "s.hbs": 'two={{key "/cm/v"}}\n' });
  await h.waitForFile(path, (text) => text === "two=x\n");
});

t("a config file updated by a symlink swap is applied; rewriting the same text changes nothing", async (h) => {
  await h.client.put("/cm/v", "y");
  await writeFile(join(h.dir, "a.hbs"), 'a={{key "/cm/v"}}\n');
  await writeFile(join(h.dir, "b.hbs"), 'b={{key "/cm/v"}}\n');
  const mount = join(h.dir, "cfg");
  const first = { templates: [{ source: join(h.dir, "a.hbs"), destination: join(h.dir, "a.out") }] };
  const publish = await configMap(mount, { "vigie.yaml": JSON.stringify(first) });
  const sidecar = await h.start(first, join(mount, "vigie.yaml"));
  await h.waitForFile(join(h.dir, "a.out"), (text) => text === "a=y\n");
  const second = { templates: [{ source: join(h.dir, "b.hbs"), destination: join(h.dir, "b.out") }] };
  await publish({ "vigie.yaml": JSON.stringify(second) });
  await h.waitForFile(join(h.dir, "b.out"), (text) => text === "b=y\n");
  assert.equal(
    sidecar.status().templates.map((template) => template.name),
    ["b.hbs"],
  );
  const rendersBefore = sidecar.status().templates[0]?.renders;
  await publish({ "vigie.yaml": JSON.stringify(second) });
  await settle(400);
  assert.is(sidecar.status().templates[0]?.renders, rendersBefore, "same config text: not applied again");
  assert.is(await readFile(join(h.dir, "b.out"), "utf8"), "b=y\n");
});

test.run();
