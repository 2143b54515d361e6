// A real server process killed (SIGKILL, then SIGTERM) and started again on
// the same port, mid-stream: SseClient reconnects with Last-Event-ID, and
// gets every tick once, in order, across both restarts.
import assert from "node:assert/strict";
import { SseClient } from "../mod.ts";
import { within } from "./util.ts";

const SCRIPT = new URL("client_tick_server.ts", import.meta.url).pathname;

/** Starts the tick server on `port` (0: a free one); resolves once it listens. */
async function start(port: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, "--port", String(port)],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let banner = "";
  while (!banner.includes("\n")) {
    const { value, done } = await within(lines.read(), 10_000, "the server");
    if (done) throw new Error("The tick server exited before it listened");
    banner += value;
  }
  const rest = (async () => {
    while (!(await lines.read()).done);
  })();
  return {
    port: Number(banner.match(/listening on (\d+)/)![1]),
    async kill(signal: Deno.Signal) {
      try {
        child.kill(signal);
      } catch {
        // It has exited already.
      }
      await child.status;
      await rest;
    },
  };
}

Deno.test("SseClient resumes across server restarts with no gap and no duplicate", async () => {
  let server = await start(0);
  const { port } = server;
  const client = new SseClient(`http://127.0.0.1:${port}/?count=60`, {
    retryMax: 200,
  });
  let retried = 0;
  client.addEventListener("statechange", () => {
    if (client.state === "retrying") retried++;
  });
  const ticks: number[] = [];
  try {
    await within(
      (async () => {
        for await (const message of client) {
          if (message.type === "done") break;
          ticks.push(Number(message.data));
          if (ticks.length === 15 || ticks.length === 35) {
            await server.kill(ticks.length === 15 ? "SIGKILL" : "SIGTERM");
            server = await start(port);
          }
        }
      })(),
      20_000,
      "sixty ticks across two restarts",
    );
  } finally {
    client.close();
    await server.kill("SIGKILL");
  }
  assert.deepEqual(ticks, Array.from({ length: 60 }, (_, i) => i + 1));
  assert.ok(retried >= 2, `the client retried ${retried} times`);
  assert.equal(client.lastEventId, "60");
});
