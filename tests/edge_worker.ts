// Runs in a Worker with no permissions and no `Deno` global, as code runs in
// an edge isolate: only web APIs. Posts what the module produced.
const denoGone = Reflect.deleteProperty(globalThis, "Deno") &&
  !("Deno" in globalThis);
const { BroadcastChannelBackplane, lastEventId, SseChannel, sseResponse } =
  await import("../mod.ts");
const { RedisBackplane } = await import("../redis.ts");

// A writer: an event, a keep-alive comment after silence (a timer), the end.
const ticks = await sseResponse(async (writer) => {
  await writer.write({ event: "tick", id: 1, data: { i: 1 } });
  await new Promise((resolve) => setTimeout(resolve, 60));
}, { keepAlive: 20 }).text();

// A channel: a topic, and a client that resumes from its last id.
const channel = new SseChannel({ keepAlive: 0 });
const first = channel.connect(new Request("http://edge/"), {
  topics: ["news"],
});
const id = channel.send({ data: "one" });
channel.send({ data: "sport" }, { topic: "sport" });
channel.send({ data: "two" }, { topic: "news" });
const resumed = channel.connect(
  new Request("http://edge/", { headers: { "last-event-id": id } }),
);
channel.close();

// Two channels on one BroadcastChannel, as two isolates of a deployment.
const name = crypto.randomUUID();
const [a, b] = [0, 1].map(() =>
  new SseChannel({
    keepAlive: 0,
    backplane: new BroadcastChannelBackplane(name),
  })
);
const onB = b.connect(new Request("http://edge/")).body!
  .pipeThrough(new TextDecoderStream()).getReader();
await onB.read(); // b's position
a.send({ data: "across" });
const across = (await onB.read()).value!;
a.close();
b.close();
await onB.cancel();

self.postMessage({
  denoGone,
  ticks,
  first: await first.text(),
  resumed: await resumed.text(),
  across,
  lastEventId: lastEventId(
    new Request("http://edge/", { headers: { "last-event-id": "7" } }),
  ),
  redis: typeof RedisBackplane,
});
