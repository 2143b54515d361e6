// The module bundled with `deno bundle` streams the same bytes under Node as
// under Deno: proof that the library uses web-standard APIs only.
import assert from "node:assert/strict";
import { encodeComment, encodeEvent } from "../mod.ts";
import { needsNode, run, withBundle } from "./runtime_util.ts";

const NODE = needsNode("the Node test");

Deno.test({
  name: "The bundled module streams the same bytes under Node and Deno",
  ignore: NODE.ignore,
  async fn() {
    NODE.check();
    await withBundle("mod.ts", async (bundle) => {
      const driver = new URL("node_driver.mjs", import.meta.url).pathname;
      const underNode = JSON.parse(await run("node", [driver, bundle]));
      const underDeno = JSON.parse(
        await run(Deno.execPath(), ["run", "-A", driver, bundle]),
      );
      assert.deepEqual(underNode, underDeno);
      assert.deepEqual(underNode, {
        headers: [
          ["cache-control", "no-cache, no-transform"],
          ["content-type", "text/event-stream; charset=utf-8"],
          ["x-accel-buffering", "no"],
        ],
        text: encodeEvent({
          event: "hi",
          id: 1,
          retry: 2000,
          data: " é\r\n😀",
        }) +
          encodeComment("note") +
          Array.from(
            { length: 10 },
            (_, i) => encodeEvent({ id: i, data: { i } }),
          )
            .join("") +
          ":\n",
        aborted: true,
        after: "SseClosedError",
      });
    });
  },
});
