// Channels sharing a backplane: in-process with every delivery order that
// fast-check can find, and as two real servers in two workers.
import assert from "node:assert/strict";
import fc from "fast-check";
import type { EventSourceMessage } from "eventsource-parser";
import {
  type SseBackplane,
  type SseBackplaneMessage,
  SseChannel,
  type SseChannelOptions,
} from "../mod.ts";
import { delay, listen } from "./util.ts";
import { StreamReader } from "./stream_reader.ts";

/** A backplane whose messages wait in a queue until the test delivers them. */
class ManualBackplane implements SseBackplane {
  peer?: ManualBackplane;
  queue: SseBackplaneMessage[] = [];
  #listener?: (message: SseBackplaneMessage) => void;
  publish(message: SseBackplaneMessage): void {
    this.peer?.queue.push(structuredClone(message));
  }
  subscribe(listener: (message: SseBackplaneMessage) => void): void {
    this.#listener = listener;
  }
  deliverOne(): void {
    const message = this.queue.shift();
    if (message) this.#listener!(message);
  }
  close(): void {}
}

/**
 * Two channels whose backplanes deliver only when the test says, with
 * `options` for both (no keep-alive unless they say).
 */
function twoInstances(options: SseChannelOptions = {}) {
  const planes = [new ManualBackplane(), new ManualBackplane()];
  planes[0].peer = planes[1];
  planes[1].peer = planes[0];
  const channels = planes.map((backplane) =>
    new SseChannel({ keepAlive: 0, ...options, backplane })
  );
  return { planes, channels };
}

type Step = "sendA" | "sendB" | "toB" | "toA" | "move";

Deno.test("A client moved between instances misses nothing and gets nothing twice", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.constantFrom<Step>("sendA", "sendB", "toB", "toA", "move"), {
        maxLength: 40,
      }),
      async (steps) => {
        const { planes, channels } = twoInstances();
        // Two running instances: each has heard the other announce itself.
        for (const plane of planes) plane.deliverOne();
        const received: EventSourceMessage[] = [];
        let at = 0;
        let client = listen(channels[at]);
        let lastId: string | undefined; // as EventSource keeps it
        const sent: string[] = [];
        for (const step of steps) {
          if (step === "sendA" || step === "sendB") {
            const data = `${step.at(-1)}${sent.length}`;
            channels[step === "sendA" ? 0 : 1].send({ data });
            sent.push(data);
          } else if (step === "toB") planes[1].deliverOne();
          else if (step === "toA") planes[0].deliverOne();
          else {
            await client.leave();
            received.push(...client.events);
            at = 1 - at;
            lastId = client.lastId() ?? lastId;
            client = listen(channels[at], lastId);
          }
        }
        while (planes.some((plane) => plane.queue.length > 0)) {
          planes[0].deliverOne();
          planes[1].deliverOne();
        }
        for (const channel of channels) channel.close();
        await client.done;
        received.push(...client.events);

        assert.deepEqual(
          received.filter((event) => event.event === "reset"),
          [],
        );
        const data = received.map((event) => event.data);
        assert.deepEqual([...data].sort(), [...sent].sort(), "each once");
        for (const origin of ["A", "B"]) {
          const own = (list: string[]) => list.filter((d) => d[0] === origin);
          assert.deepEqual(own(data), own(sent), `${origin} in order`);
        }
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("A channel joined mid-stream resets a client it cannot catch up", async () => {
  const { planes, channels: [a, b] } = twoInstances();
  const early = listen(a);
  await delay(0);
  await early.leave();
  await early.done;
  a.send({ data: "1" });
  planes[1].queue.length = 0; // b never hears of it
  a.send({ data: "2" });
  planes[1].deliverOne();
  // The client left a before event 1; b cannot give it event 1.
  const client = listen(b, early.lastId());
  b.close();
  a.close();
  await client.done;
  assert.equal(client.events.length, 1);
  assert.equal(client.events[0].event, "reset");
  assert.equal(
    client.events[0].data,
    '{"reason":"events after the last event id are no longer in the history"}',
  );
});

Deno.test("A client whose id names an instance this one never heard from is reset", async () => {
  const a = new SseChannel({
    backplane: new ManualBackplane(), // no one else listens
    keepAlive: 0,
  });
  const client = listen(a);
  a.send({ data: "one" });
  await client.leave();
  a.send({ data: "two" }); // the client misses it
  a.close(); // a goes away; b starts after it and never hears of it
  const b = new SseChannel({ backplane: new ManualBackplane(), keepAlive: 0 });
  assert.match(client.lastId()!, /^[0-9a-f]{8}:1$/);
  const resumed = listen(b, client.lastId());
  b.close();
  await resumed.done;
  assert.deepEqual(resumed.events.map(({ event, data }) => ({ event, data })), [
    {
      event: "reset",
      data:
        '{"reason":"the last event id names a server this one has not heard from"}',
    },
  ]);
});

Deno.test("Vector ids name only the instances that sent something", async () => {
  const { planes, channels: [a, b] } = twoInstances();
  for (const plane of planes) plane.deliverOne(); // each hears the other
  const id = a.send({ data: "one" });
  assert.match(id, /^[0-9a-f]{8}:1$/, "b, which sent nothing, is left out");
  planes[1].deliverOne();
  const client = listen(b, id);
  assert.match(b.send({ data: "two" }), /^[0-9a-f]{8}:1,[0-9a-f]{8}:1$/);
  a.close();
  b.close();
  await client.done;
  assert.deepEqual(client.events.map((event) => event.data), ["two"]);
});

Deno.test("A channel with a backplane assigns ids itself", () => {
  const channel = new SseChannel({ backplane: new ManualBackplane() });
  assert.throws(() => channel.send({ id: "mine", data: 1 }), {
    name: "TypeError",
    message:
      "Cannot send event: a channel with a backplane assigns ids itself, so `id` must be left out",
  });
  channel.close();
});

/** Starts channel_worker.ts in a worker; resolves with its port. */
async function startWorker(name: string) {
  const worker = new Worker(new URL("channel_worker.ts", import.meta.url), {
    type: "module",
  });
  const port = await new Promise<number>((resolve) => {
    worker.onmessage = (event) => resolve(event.data.port);
    worker.postMessage({ name });
  });
  return {
    url: new URL(`http://127.0.0.1:${port}/`),
    async stop() {
      await new Promise((resolve) => {
        worker.onmessage = resolve;
        worker.postMessage("stop");
      });
      worker.terminate();
    },
  };
}

async function readEvents(
  url: URL,
  count: number,
  headers: HeadersInit = {},
): Promise<EventSourceMessage[]> {
  const reader = await StreamReader.fetch(new URL("events", url), { headers });
  const events = await reader.take(count);
  await reader.cancel();
  return events;
}

async function post(url: URL, data: string): Promise<string> {
  const response = await fetch(new URL("send", url), {
    method: "POST",
    body: data,
  });
  return await response.text();
}

Deno.test("Two servers in two workers share a channel over BroadcastChannel", async () => {
  const name = `ssekit-test-${crypto.randomUUID()}`;
  const servers = [await startWorker(name), await startWorker(name)];
  try {
    const [one, two] = servers.map((server) => server.url);
    // A client on each server; both see events sent to either.
    const reading = [readEvents(one, 40), readEvents(two, 40)];
    await delay(50); // both clients connected
    const sent: string[] = [];
    await Promise.all(["one", "two"].map(async (origin) => {
      const url = origin === "one" ? one : two;
      for (let i = 0; i < 20; i++) {
        await post(url, `${origin}-${i}`);
        sent.push(`${origin}-${i}`);
      }
    }));
    for (const events of await Promise.all(reading)) {
      const data = events.map((event) => event.data);
      assert.deepEqual([...data].sort(), sent.sort());
      for (const origin of ["one", "two"]) {
        const own = data.filter((d) => d.startsWith(origin));
        assert.deepEqual(
          own,
          Array.from({ length: 20 }, (_, i) => `${origin}-${i}`),
        );
      }
    }

    // A client leaves server one mid-stream and resumes on server two.
    const moving = readEvents(one, 5);
    await delay(50);
    for (let i = 0; i < 5; i++) await post(one, `before-${i}`);
    const seen = await moving;
    for (let i = 0; i < 5; i++) await post(two, `after-${i}`);
    await delay(50); // server two has heard every event
    const resumed = await readEvents(two, 5, {
      "last-event-id": seen.at(-1)!.id!,
    });
    assert.deepEqual(
      resumed.map((event) => event.data),
      Array.from({ length: 5 }, (_, i) => `after-${i}`),
    );
  } finally {
    for (const server of servers) await server.stop();
  }
});

Deno.test("A client far ahead of its instance is reset at once, and a near one after a bound", async (t) => {
  await t.step("further ahead than historySize: at once", async () => {
    const { planes, channels: [a, b] } = twoInstances();
    for (const plane of planes) plane.deliverOne();
    const id = a.send({ data: "one" });
    planes[1].deliverOne();
    const origin = id.split(":")[0];
    const client = listen(b, `${origin}:99999999999999`);
    a.close();
    b.close();
    await client.done;
    assert.deepEqual(client.events.map(({ event, data }) => [event, data]), [[
      "reset",
      '{"reason":"the last event id is too far ahead of this server"}',
    ]]);
  });
  await t.step(
    "a little ahead, never caught up: after catchUpTimeout",
    async () => {
      const { planes, channels: [a, b] } = twoInstances({ catchUpTimeout: 20 });
      for (const plane of planes) plane.deliverOne();
      a.send({ data: "one" });
      const id = a.send({ data: "two" });
      planes[1].deliverOne(); // b has one; the client comes with two
      const client = listen(b, id);
      await delay(50);
      b.send({ data: "from b" });
      a.close();
      b.close();
      await client.done;
      assert.deepEqual(client.events.map(({ event }) => event), [
        "reset",
        undefined,
      ]);
      assert.match(client.events[0].data, /did not catch up within 20 ms/);
      assert.equal(client.events[1].data, "from b");
    },
  );
});

Deno.test("A channel ignores backplane messages of the wrong shape", async () => {
  const plane = new ManualBackplane();
  const channel = new SseChannel({ backplane: plane, keepAlive: 0 });
  const client = listen(channel);
  for (
    const message of [
      null,
      42,
      "text",
      {},
      { origin: "x", seq: 1 },
      { origin: "x", seq: "1", body: "data: 1\n\n" },
      { origin: "a:b", seq: 1, body: "data: 1\n\n" },
      { origin: "x", seq: -1, body: "data: 1\n\n" },
      { origin: "x", seq: 1, body: "data: 1\n\n", topic: 5 },
    ]
  ) {
    plane.queue.push(message as never);
    plane.deliverOne();
  }
  channel.send({ data: "still fine" });
  await client.leave();
  channel.close();
  assert.deepEqual(client.events.map(({ data }) => data), ["still fine"]);
});

Deno.test("A client ahead of its instance gets with each event the id of what it has then", async () => {
  const { planes, channels: [a, b] } = twoInstances();
  for (const plane of planes) plane.deliverOne();
  const first = a.send({ data: "a1" });
  const ahead = a.send({ data: "a2" });
  planes[1].deliverOne(); // b has a1; the client comes with a2
  const client = listen(b, ahead);
  // One batch: both go out in one flush, each with its own id.
  const ids = [b.send({ data: "b1" }), b.send({ data: "b2" })];
  a.close();
  b.close();
  await client.done;
  assert.deepEqual(
    client.events.map(({ id, data }) => [id, data]),
    [[ids[0].replace(first, ahead), "b1"], [
      ids[1].replace(first, ahead),
      "b2",
    ]],
  );
});

Deno.test("A client ahead of its instance on a quiet topic is not reset once the instance caught up", async () => {
  const { planes, channels: [a, b] } = twoInstances({ catchUpTimeout: 30 });
  for (const plane of planes) plane.deliverOne();
  a.send({ data: "a1" }, { topic: "other" });
  const ahead = a.send({ data: "a2" }, { topic: "other" });
  planes[1].deliverOne(); // b has a1; the client comes with a2
  const client = listen(b, ahead, ["mine"]);
  planes[1].deliverOne(); // b catches up, with an event the client does not take
  await delay(60);
  b.send({ data: "mine" }, { topic: "mine" });
  a.close();
  b.close();
  await client.done;
  assert.deepEqual(client.events.map(({ event, data }) => [event, data]), [[
    undefined,
    "mine",
  ]]);
});

Deno.test("close() clears the catch-up timer of a client ahead of its instance", async () => {
  const { planes, channels: [a, b] } = twoInstances({ catchUpTimeout: 60_000 });
  for (const plane of planes) plane.deliverOne();
  a.send({ data: "one" });
  const id = a.send({ data: "two" });
  planes[1].deliverOne(); // b has one; the client comes with two
  const client = listen(b, id);
  await delay(0);
  a.close();
  b.close(); // a timer left running would fail the sanitizer
  await client.done;
  assert.deepEqual(client.events, []);
  assert.equal(b.stats.clients, 0);
  assert.equal(b.stats.disconnects, 1);
});
