// SseChannel.stats: every counter against what the test did, and the bytes
// against what the clients read.
import assert from "node:assert/strict";
import { SseChannel } from "../mod.ts";
import { delay, listen } from "./util.ts";

const ENCODER = new TextEncoder();

Deno.test("SseChannel.stats counts connects, events, drops, resumes, resets and bytes", async () => {
  const channel = new SseChannel({
    historyBytes: 4096,
    maxBufferedAmount: 4096,
    keepAlive: 0,
  });
  assert.deepEqual(channel.stats, {
    clients: 0,
    connects: 0,
    disconnects: 0,
    dropped: 0,
    events: 0,
    bytes: 0,
    resumes: 0,
    resets: 0,
  });
  const first = listen(channel);
  const news = listen(channel, undefined, ["news"]);
  // Never read: its queue grows until the channel drops it.
  const stuck = channel.connect(new Request("http://x/")).body!;
  const sent = [1, 2, 3].map((i) => channel.send({ data: `e${i}` }));
  channel.send({ data: "headline" }, { topic: "news" });
  channel.sendLocal({ event: "clients", data: 3 });
  await first.leave();
  assert.equal(channel.stats.clients, 2);

  const resumed = listen(channel, sent[0]);
  const reset = listen(channel, "nope-1");
  // The others read as it comes; the stuck client's queue passes its limit.
  for (let i = 0; i < 5; i++) {
    channel.send({ data: "x".repeat(1000) });
    await delay(0);
  }
  assert.equal(channel.dropped, 1);
  channel.close();
  await Promise.all([news.done, resumed.done, reset.done]);
  await stuck.cancel();

  assert.equal(resumed.events.filter((e) => e.event === "reset").length, 0);
  assert.equal(reset.events[0].event, "reset");
  const read = [first, news, resumed, reset]
    .reduce((sum, client) => sum + ENCODER.encode(client.raw()).length, 0);
  assert.deepEqual(channel.stats, {
    clients: 0,
    connects: 5,
    disconnects: 5,
    dropped: 1,
    events: 10,
    bytes: read,
    resumes: 1,
    resets: 1,
  });
});

Deno.test("SseChannel.stats gives a new plain object that counts bytes of clients still connected", async () => {
  const channel = new SseChannel({ keepAlive: 0 });
  const client = listen(channel);
  channel.send({ data: "hi" });
  await delay(0);
  const stats = channel.stats;
  assert.equal(stats.clients, 1);
  assert.equal(stats.bytes, ENCODER.encode(client.raw()).length);
  assert.ok(stats.bytes > 0);
  assert.notEqual(channel.stats, stats);
  assert.equal(Object.getPrototypeOf(stats), Object.prototype);
  channel.close();
  await client.done;
});

Deno.test("SseChannel.close() counts each client once and calls each onClose once", async () => {
  const channel = new SseChannel({ keepAlive: 0 });
  const sizes: number[] = [];
  const onClose = () => sizes.push(channel.size);
  const clients = Array.from({ length: 6 }, (_, i) => {
    const topics = i % 2 ? ["news"] : undefined;
    const response = channel.connect(new Request("http://x/"), {
      topics,
      onClose,
    });
    return new Response(response.body).text();
  });
  channel.send({ data: "all" });
  channel.send({ data: "headline" }, { topic: "news" });
  await delay(0);
  const before = channel.stats;
  channel.close();
  channel.close();
  const read = (await Promise.all(clients))
    .reduce((sum, text) => sum + ENCODER.encode(text).length, 0);
  // The clients go at once: each onClose already sees none left.
  assert.deepEqual(sizes, [0, 0, 0, 0, 0, 0]);
  assert.equal(before.bytes, read);
  assert.deepEqual(channel.stats, {
    ...before,
    clients: 0,
    disconnects: 6,
  });
});
