// The README is also the package's page on JSR: what it links to must be in
// the repository and in the published files.
import assert from "node:assert/strict";

Deno.test("Every file the README links to exists and is published", async () => {
  const root = new URL("../", import.meta.url);
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const { publish } = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", root)),
  );
  const links = [...readme.matchAll(/\]\(([^)#]+)(?:#[^)]*)?\)/g)]
    .map(([, target]) => target)
    .filter((target) => !/^[a-z]+:/.test(target));
  assert.ok(links.length > 0);
  for (const target of new Set(links)) {
    await Deno.stat(new URL(target, root)); // throws if it is missing
    assert.ok(
      publish.include.includes(target),
      `deno.json publish.include lacks ${target}, which the README links`,
    );
  }
});
