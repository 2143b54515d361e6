// The module in a Worker with no permissions and no `Deno` global: a
// stand-in for an edge isolate, where only web APIs exist.
import assert from "node:assert/strict";

Deno.test("The module runs in a Worker with no permissions and no Deno global", async () => {
  const worker = new Worker(new URL("edge_worker.ts", import.meta.url), {
    type: "module",
    deno: { permissions: "none" },
  });
  try {
    const result = await new Promise<Record<string, unknown>>(
      (resolve, reject) => {
        worker.onmessage = (event) => resolve(event.data);
        worker.onerror = (event) => {
          event.preventDefault();
          reject(new Error(event.message));
        };
      },
    );
    const epoch = String(result.first).slice(4, 10);
    assert.deepEqual(result, {
      denoGone: true,
      ticks: result.ticks,
      first: `id: ${epoch}-0\n\nid: ${epoch}-1\ndata: one\n\n` +
        `id: ${epoch}-3\ndata: two\n\n`,
      resumed: `id: ${epoch}-2\ndata: sport\n\nid: ${epoch}-3\ndata: two\n\n`,
      across: result.across,
      lastEventId: "7",
      redis: "function",
    });
    // Keep-alive comments after the silence: its timers run there too.
    assert.match(
      String(result.ticks),
      /^event: tick\nid: 1\ndata: \{"i":1\}\n\n(:\n)+$/,
    );
    assert.match(String(result.across), /^id: [^\n]+\ndata: across\n\n$/);
  } finally {
    worker.terminate();
  }
});
