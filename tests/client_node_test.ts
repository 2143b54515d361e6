// The client bundled with `deno bundle` reads the same stream under Node as
// under Deno, across a reconnect: fetch, streams and EventTarget are all it
// needs of a runtime.
import assert from "node:assert/strict";
import { lastEventId, SseWriter } from "../mod.ts";
import { withServer } from "./util.ts";

const node = await new Deno.Command("node", { args: ["--version"] }).output()
  .then((out) => out.success ? new TextDecoder().decode(out.stdout).trim() : "")
  .catch(() => "");
const major = Number(node.match(/^v(\d+)\./)?.[1] ?? 0);
const inCi = Deno.env.get("CI") === "true";
if (major < 20 && !inCi) {
  console.warn(
    `Skipping the client's Node test: it needs node 20+ on PATH (found ${
      node || "none"
    }).`,
  );
}

async function run(command: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(command, { args, stderr: "inherit" })
    .output();
  assert.ok(out.success, `${command} ${args.join(" ")} failed`);
  return new TextDecoder().decode(out.stdout);
}

/** Two ticks per connection, the second ends it; `done` after tick 4. */
async function ticks(request: Request): Promise<Response> {
  assert.equal(request.headers.get("authorization"), "Bearer node-key");
  assert.deepEqual(await request.json(), { prompt: "count" });
  const last = Number(lastEventId(request) ?? 0);
  const writer = new SseWriter();
  for (let i = last + 1; i <= last + 2; i++) {
    writer.write({ event: "tick", id: i, data: { i, text: "é😀" } });
  }
  if (last === 2) writer.write({ event: "done", data: "" });
  writer.close();
  return writer.response;
}

Deno.test({
  name:
    "The bundled client reads a stream across a reconnect under Node and Deno",
  ignore: major < 20 && !inCi,
  async fn() {
    assert.ok(
      major >= 20,
      `CI needs node 20+ on PATH, found ${node || "none"}`,
    );
    const dir = await Deno.makeTempDir();
    try {
      const bundle = `${dir}/client.js`;
      await run(Deno.execPath(), [
        "bundle",
        "--quiet",
        "--platform",
        "browser",
        "-o",
        bundle,
        new URL("../client.ts", import.meta.url).pathname,
      ]);
      const driver = new URL("client_node_driver.mjs", import.meta.url)
        .pathname;
      await withServer(ticks, async (url) => {
        const underNode = JSON.parse(
          await run("node", [driver, bundle, url.href]),
        );
        const underDeno = JSON.parse(
          await run(Deno.execPath(), ["run", "-A", driver, bundle, url.href]),
        );
        assert.deepEqual(underNode, underDeno);
        assert.deepEqual(underNode, {
          messages: [1, 2, 3, 4].map((i) => ({
            type: "tick",
            data: JSON.stringify({ i, text: "é😀" }),
            lastEventId: String(i),
          })),
          states: [
            "connecting",
            "open",
            "retrying",
            "connecting",
            "open",
            "closed",
          ],
          lastEventId: "4",
        });
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
