// The README's Node and Bun recipes, run from a scratch project that has
// installed the packed npm package: `node npm_server.mjs srvx|hono` or
// `bun npm_server.mjs bun`. Prints its port, then serves until killed.
import { SseChannel, SseWriter } from "@ssekit/sse";

const room = new SseChannel();
/** How many writers have ended, as their `signal`s tell. */
let closed = 0;

function handler(request) {
  const url = new URL(request.url);
  const number = (name, fallback) =>
    Number(url.searchParams.get(name) ?? fallback);
  if (url.pathname === "/ticks") {
    const writer = new SseWriter({ signal: request.signal });
    const count = number("count", 3), intervalMs = number("intervalMs", 10);
    let i = 0;
    const timer = setInterval(() => {
      writer.write({ event: "tick", id: ++i, data: { i } }).catch(() => {});
      if (i === count) writer.close();
    }, intervalMs);
    writer.signal.addEventListener("abort", () => {
      clearInterval(timer);
      closed++;
    });
    return writer.response;
  }
  if (url.pathname === "/idle") {
    // Only the options given: the defaults are what is tested.
    const keepAlive = url.searchParams.get("keepAlive");
    const writer = new SseWriter({
      signal: request.signal,
      ...keepAlive === null ? {} : { keepAlive: Number(keepAlive) },
    });
    writer.comment("quiet from now on");
    return writer.response;
  }
  if (url.pathname === "/room") return room.connect(request);
  if (url.pathname === "/send") {
    room.send({ data: url.searchParams.get("data") ?? "" });
    return new Response(null, { status: 204 });
  }
  if (url.pathname === "/stats") {
    return Response.json({ closed, clients: room.size });
  }
  return new Response("Not found\n", { status: 404 });
}

const adapter = process.argv[2];
if (adapter === "srvx") {
  const { serve } = await import("srvx");
  const server = serve({
    fetch: handler,
    hostname: "127.0.0.1",
    port: 0,
    silent: true,
  });
  await server.ready();
  console.log(new URL(server.url).port);
} else if (adapter === "hono") {
  const { serve } = await import("@hono/node-server");
  serve(
    { fetch: handler, hostname: "127.0.0.1", port: 0 },
    (info) => console.log(info.port),
  );
} else if (adapter === "bun") {
  const server = Bun.serve({
    fetch: handler,
    hostname: "127.0.0.1",
    port: 0,
    silent: true,
  });
  console.log(server.port);
} else {
  throw new Error(`Unknown adapter ${adapter}: srvx, hono or bun`);
}
