// The client bundled with `deno bundle` reads the same stream under Node as
// under Deno, across a reconnect: fetch, streams and EventTarget are all it
// needs of a runtime.
import assert from "node:assert/strict";
import { lastEventId, SseWriter } from "../mod.ts";
import { withServer } from "./util.ts";
import { needsNode, run, withBundle } from "./runtime_util.ts";

const NODE = needsNode("the client's Node test");

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
  ignore: NODE.ignore,
  async fn() {
    NODE.check();
    await withBundle("client.ts", async (bundle) => {
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
    });
  },
});
