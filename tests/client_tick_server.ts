// A tick stream in a process of its own, for tests/client_restart_test.ts to
// kill and start again mid-stream: after `Last-Event-ID: k`, ticks k+1,
// k+2, … one every 10 ms with `retry: 50`, then `event: done` after tick
// `?count=` (100 by default). It keeps no state: a restarted server resumes
// a client from its id alone.
//
//   deno run -A tests/client_tick_server.ts [--port 0]
//
// Prints `listening on PORT` once it listens.
import { lastEventId, SseWriter } from "../mod.ts";

const at = Deno.args.indexOf("--port");
const port = at === -1 ? 0 : Number(Deno.args[at + 1]);

Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: ({ port }) => console.log(`listening on ${port}`),
}, (request) => {
  const count = Number(new URL(request.url).searchParams.get("count") ?? 100);
  let i = Number(lastEventId(request) ?? 0);
  const writer = new SseWriter({ signal: request.signal });
  writer.write({ retry: 50 });
  const timer = setInterval(() => {
    if (i === count) {
      writer.write({ event: "done", data: "" });
      return writer.close();
    }
    i++;
    writer.write({ event: "tick", id: i, data: String(i) });
  }, 10);
  writer.signal.addEventListener("abort", () => clearInterval(timer));
  return writer.response;
});
