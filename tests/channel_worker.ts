// One server instance for backplane_test.ts: a channel on a
// BroadcastChannelBackplane, served on an ephemeral port in a worker.
/// <reference lib="deno.worker" />
import { BroadcastChannelBackplane, SseChannel } from "../mod.ts";

self.onmessage = (event: MessageEvent<{ name: string }>) => {
  const channel = new SseChannel({
    backplane: new BroadcastChannelBackplane(event.data.name),
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const { pathname } = new URL(request.url);
      if (pathname === "/events") return channel.connect(request);
      if (pathname === "/send" && request.method === "POST") {
        return new Response(channel.send({ data: await request.text() }));
      }
      return new Response("Not found", { status: 404 });
    },
  );
  self.postMessage({ port: server.addr.port });
  self.onmessage = async () => {
    channel.close();
    await server.shutdown();
    self.postMessage("stopped");
  };
};
