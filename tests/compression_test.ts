// A client that accepts compressed responses gets every event as it is
// written, whatever Deno.serve does about encoding: Deno 2.9.6 compresses
// none of these, but a server that did, buffering, would show here.
import assert from "node:assert/strict";
import { SseWriter } from "../mod.ts";
import { assertOneByOne, withDemo } from "./demo_util.ts";
import { StreamReader } from "./stream_reader.ts";
import { withServer } from "./util.ts";

const ACCEPT = { "accept-encoding": "gzip, br" };

Deno.test("Events reach a client that sends Accept-Encoding: gzip, br as they are written", async (t) => {
  await t.step("the demo's tick stream", async () => {
    await withDemo(async ({ url }) => {
      const response = await fetch(
        new URL("/sse?count=5&intervalMs=300", url),
        {
          headers: ACCEPT,
        },
      );
      assert.equal(response.headers.get("content-encoding"), null);
      const reader = new StreamReader(response.body!);
      await reader.rest();
      assertOneByOne(reader, 5, 300, 250);
    });
  });

  await t.step("a writer whose cache-control allows transforms", async () => {
    // The same ticks from a writer whose headers do not say no-transform.
    const handler = () => {
      const writer = new SseWriter({
        headers: { "cache-control": "no-cache" },
      });
      (async () => {
        for (let i = 1; i <= 5; i++) {
          await new Promise((resolve) => setTimeout(resolve, 300));
          const timestamp = new Date().toISOString();
          await writer.write({ event: "tick", id: i, data: { i, timestamp } });
        }
        writer.close();
      })();
      return writer.response;
    };
    await withServer(handler, async (url) => {
      const response = await fetch(url, { headers: ACCEPT });
      assert.equal(response.headers.get("cache-control"), "no-cache");
      assert.equal(response.headers.get("content-encoding"), null);
      const reader = new StreamReader(response.body!);
      await reader.rest();
      assertOneByOne(reader, 5, 300, 250);
    });
  });
});
