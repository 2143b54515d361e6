import assert from "node:assert/strict";
import type { EventSourceMessage } from "eventsource-parser";
import { SseChannel, type SseChannelOptions, SseClosedError } from "../mod.ts";
import { aborted, delay, withServer } from "./util.ts";
import { StreamReader } from "./stream_reader.ts";

function ids(events: EventSourceMessage[]): (string | undefined)[] {
  return events.map((event) => event.id);
}

/** The ids `${epoch}-${from}` to `${epoch}-${to}`. */
function range(epoch: string, from: number, to: number): string[] {
  return Array.from(
    { length: to - from + 1 },
    (_, i) => `${epoch}-${from + i}`,
  );
}

/** A channel and its epoch, read from the position a new client gets. */
async function localChannel(
  options: SseChannelOptions = {},
): Promise<{ channel: SseChannel; epoch: string }> {
  const channel = new SseChannel(options);
  const probe = new StreamReader(
    channel.connect(new Request("http://x/")).body!,
  );
  const first = await probe.next();
  await probe.cancel();
  const epoch = first?.match(/^id: ([0-9a-z]{6})-0\n\n$/)?.[1];
  assert.ok(epoch, `a position with an epoch: ${JSON.stringify(first)}`);
  return { channel, epoch };
}

Deno.test("SseChannel delivers every event to every client, in order", async () => {
  const { channel, epoch } = await localChannel();
  const clients = 20;
  const events = 300;
  await withServer((request) => channel.connect(request), async (url) => {
    const readers = await Promise.all(
      Array.from({ length: clients }, async () => {
        const response = await fetch(url);
        return new StreamReader(response.body!);
      }),
    );
    while (channel.size < clients) await delay(1);
    for (let i = 1; i <= events; i++) {
      assert.equal(channel.send({ data: { i } }), `${epoch}-${i}`);
      if (i % 50 === 0) await delay(1);
    }
    channel.close();
    for (const reader of readers) {
      const got = await reader.take();
      assert.deepEqual(ids(got), range(epoch, 1, events));
      assert.deepEqual(
        got.map((event) => JSON.parse(event.data).i),
        Array.from({ length: events }, (_, i) => i + 1),
      );
    }
    assert.equal(channel.size, 0);
  });
});

Deno.test("SseChannel sends the same bytes to every waiting client", async () => {
  const { channel, epoch } = await localChannel({ keepAlive: 0 });
  const readers = [1, 2, 3].map(() =>
    channel.connect(new Request("http://localhost/")).body!.getReader()
  );
  for (const reader of readers) {
    const { value } = await reader.read();
    assert.equal(new TextDecoder().decode(value), `id: ${epoch}-0\n\n`);
  }
  const reads = readers.map((reader) => reader.read());
  channel.send({ event: "news", data: "once" });
  const chunks = (await Promise.all(reads)).map(({ value }) => value);
  assert.equal(
    new TextDecoder().decode(chunks[0]),
    `id: ${epoch}-1\nevent: news\ndata: once\n\n`,
  );
  assert.ok(chunks.every((chunk) => chunk === chunks[0]), "one encoding");
  channel.close();
  for (const reader of readers) assert.equal((await reader.read()).done, true);
});

Deno.test("SseChannel resumes a client after its Last-Event-ID, without gap or duplicate", async (t) => {
  const { channel, epoch } = await localChannel({ keepAlive: 0 });
  await withServer((request) => channel.connect(request), async (url) => {
    const first = await fetch(url);
    const reader = new StreamReader(first.body!);
    while (channel.size < 1) await delay(1);
    for (let i = 1; i <= 5; i++) channel.send({ data: i });
    assert.deepEqual(ids(await reader.take(5)), range(epoch, 1, 5));
    await reader.cancel();
    while (channel.size > 0) await delay(1);
    for (let i = 6; i <= 10; i++) channel.send({ data: i });

    await t.step("with the Last-Event-ID header", async () => {
      const again = await fetch(url, {
        headers: { "Last-Event-ID": `${epoch}-5` },
      });
      const resumed = new StreamReader(again.body!);
      assert.deepEqual(ids(await resumed.take(5)), range(epoch, 6, 10));
      await resumed.cancel();
    });
    await t.step("with the lastEventId query parameter", async () => {
      const again = await fetch(new URL(`?lastEventId=${epoch}-8`, url));
      const resumed = new StreamReader(again.body!);
      assert.deepEqual(ids(await resumed.take(2)), range(epoch, 9, 10));
      channel.send({ data: 11 });
      assert.deepEqual(ids(await resumed.take(3)), range(epoch, 9, 11));
      await resumed.cancel();
    });
    await t.step("with explicit ids", async () => {
      channel.send({ id: "a", data: "a" });
      channel.send({ id: "b", data: "b" });
      const again = await fetch(url, { headers: { "Last-Event-ID": "a" } });
      const resumed = new StreamReader(again.body!);
      assert.deepEqual(ids(await resumed.take(1)), ["b"]);
      await resumed.cancel();
    });
    channel.close();
  });
});

Deno.test("SseChannel resumes a client that left before any event", async () => {
  const { channel, epoch } = await localChannel({ keepAlive: 0 });
  const early = new StreamReader(
    channel.connect(new Request("http://x/")).body!,
  );
  // The position it resumes from.
  assert.equal(await early.next(), `id: ${epoch}-0\n\n`);
  await early.cancel();
  channel.send({ data: "a" });
  channel.send({ data: "b" });
  const again = new StreamReader(
    channel.connect(
      new Request("http://x/", { headers: { "last-event-id": `${epoch}-0` } }),
    ).body!,
  );
  assert.deepEqual(ids(await again.take(2)), range(epoch, 1, 2));
  await again.cancel();
  channel.close();
});

Deno.test("SseChannel resumes a client whose id is the one just before its history", async () => {
  const { channel, epoch } = await localChannel({
    keepAlive: 0,
    historySize: 3,
  });
  for (let i = 1; i <= 5; i++) channel.send({ data: i }); // keeps 3, 4, 5
  const resume = (last: string) =>
    new StreamReader(
      channel.connect(
        new Request("http://x/", {
          headers: { "last-event-id": `${epoch}-${last}` },
        }),
      ).body!,
    );
  const exact = resume("2");
  const gone = resume("1");
  const fromStart = resume("0");
  channel.close();
  assert.equal(
    await exact.rest(),
    [3, 4, 5].map((i) => `id: ${epoch}-${i}\ndata: ${i}\n\n`).join(""),
  );
  for (const reader of [gone, fromStart]) {
    assert.match(
      await reader.rest(),
      new RegExp(`^event: reset\nid: ${epoch}-5\n`),
    );
  }
});

Deno.test("SseChannel tells a client whose missed events are gone to reset", async (t) => {
  const { channel, epoch } = await localChannel({
    keepAlive: 0,
    historySize: 3,
  });
  for (let i = 1; i <= 10; i++) channel.send({ data: i });
  const other = epoch === "000000" ? "000001" : "000000";
  const cases: [string, string][] = [
    [`${epoch}-2`, `the last event id \\"${epoch}-2\\" is unknown or too old`],
    ["nope", 'the last event id \\"nope\\" is unknown or too old'],
    ["2", 'the last event id \\"2\\" is unknown or too old'],
    [
      `${other}-11`,
      "the last event id is from another run of this channel (the server restarted, or it is another server): what followed it is unknown here",
    ],
    [`${epoch}-99`, "the last event id is ahead of this channel"],
  ];
  let current = 10;
  for (const [last, reason] of cases) {
    await t.step(`Last-Event-ID: ${last}`, async () => {
      const response = channel.connect(
        new Request("http://localhost/", {
          headers: { "last-event-id": last },
        }),
      );
      const reader = new StreamReader(response.body!);
      const [reset] = await reader.take(1);
      assert.deepEqual(reset, {
        event: "reset",
        id: `${epoch}-${current}`,
        data: `{"reason":"${reason}"}`,
      });
      assert.equal(channel.send({ data: "live" }), `${epoch}-${++current}`);
      assert.equal((await reader.take(2))[1].data, "live");
      await reader.cancel();
    });
  }
  const response = channel.connect(
    new Request("http://localhost/", {
      headers: { "last-event-id": `${epoch}-12` },
    }),
  );
  const reader = new StreamReader(response.body!);
  assert.equal(current, 15);
  assert.deepEqual(
    ids(await reader.take(3)),
    range(epoch, 13, 15),
    "still known",
  );
  await reader.cancel();
  channel.close();
});

Deno.test("SseChannel drops a client that reads nothing, and no one else", async () => {
  const { channel, epoch } = await localChannel({
    keepAlive: 0,
    historyBytes: 64 * 1024,
    maxBufferedAmount: 256 * 1024,
  });
  const events = 3000;
  const data = "x".repeat(10_000); // 30 MB in all
  await withServer((request) => channel.connect(request), async (url) => {
    const healthy = new StreamReader((await fetch(url)).body!);
    const stalled = await Deno.connect({
      hostname: "127.0.0.1",
      port: +url.port,
    });
    await stalled.write(
      new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`),
    );
    while (channel.size < 2) await delay(1);
    let sent = 0;
    const receiving = healthy.take(events);
    try {
      while (sent < events) {
        channel.send({ data });
        sent++;
        // The healthy client keeps up: it reads before more is sent.
        while (sent - healthy.events.length > 20) await delay(1);
      }
      assert.equal(channel.dropped, 1);
      assert.equal(channel.size, 1);
      const got = await receiving;
      assert.deepEqual(ids(got), range(epoch, 1, events));
    } finally {
      stalled.close();
      channel.close();
    }
    assert.equal((await healthy.take()).length, events);
  });
});

Deno.test("SseChannel.size follows connects and disconnects exactly", async () => {
  const { channel, epoch } = await localChannel({ keepAlive: 0 });
  const controllers = Array.from({ length: 5 }, () => new AbortController());
  const bodies = controllers.map((controller) =>
    channel.connect(new Request("http://localhost/"), {
      signal: controller.signal,
    }).body!
  );
  assert.equal(channel.size, 5);
  controllers[0].abort(); // options.signal
  assert.equal(channel.size, 4);
  await bodies[1].cancel(); // the response stream
  assert.equal(channel.size, 3);
  controllers[1].abort(); // already gone: counted once
  assert.equal(channel.size, 3);
  channel.connect(new Request("http://localhost/"), {
    signal: AbortSignal.abort(),
  });
  await delay(0);
  assert.equal(channel.size, 3, "an aborted client is let go at once");
  channel.close();
  assert.equal(channel.size, 0);
  for (const body of bodies.slice(2)) {
    assert.equal(await new Response(body).text(), `id: ${epoch}-0\n\n`);
  }
});

Deno.test("SseChannel calls onClose once a client has left", async () => {
  const channel = new SseChannel({ keepAlive: 0 });
  const sizes: number[] = [];
  const onClose = () => sizes.push(channel.size);
  const first = channel.connect(new Request("http://x/"), { onClose });
  channel.connect(new Request("http://x/"), { onClose });
  await first.body!.cancel();
  assert.deepEqual(sizes, [1]);
  channel.close();
  assert.deepEqual(sizes, [1, 0]);
  assert.equal(channel.closed, true);
  assert.throws(
    () => channel.connect(new Request("http://x/"), { onClose: 1 as never }),
    {
      name: "TypeError",
      message: "Cannot connect: `onClose` must be a function",
    },
  );
});

Deno.test("SseChannel.close() ends every stream and refuses new clients", async () => {
  const { channel, epoch } = await localChannel({ keepAlive: 0 });
  const responses = [1, 2].map(() => channel.connect(new Request("http://x/")));
  channel.send({ data: "bye" });
  channel.close();
  channel.close();
  for (const response of responses) {
    assert.equal(
      await response.text(),
      `id: ${epoch}-0\n\nid: ${epoch}-1\ndata: bye\n\n`,
    );
  }
  const late = channel.connect(new Request("http://x/"));
  assert.equal(late.status, 503);
  assert.equal(await late.text(), "The event channel is closed\n");
  assert.throws(() => channel.send({ data: "late" }), SseClosedError);
});

Deno.test("SseChannel sends topic events only to the clients of that topic", async () => {
  const channel = new SseChannel({ keepAlive: 0 });
  const all = new StreamReader(channel.connect(new Request("http://x/")).body!);
  const news = new StreamReader(
    channel.connect(new Request("http://x/"), { topics: ["news"] }).body!,
  );
  const sport = new StreamReader(
    channel.connect(new Request("http://x/"), { topics: ["sport"] }).body!,
  );
  channel.send({ data: "to everyone" });
  channel.send({ data: "goal" }, { topic: "sport" });
  channel.send({ data: "election" }, { topic: "news" });
  channel.close();
  const data = async (reader: StreamReader) =>
    (await reader.take()).map((event) => event.data);
  assert.deepEqual(await data(all), ["to everyone", "goal", "election"]);
  assert.deepEqual(await data(news), ["to everyone", "election"]);
  assert.deepEqual(await data(sport), ["to everyone", "goal"]);
});

Deno.test("SseChannel rejects bad input with an error naming the field", async (t) => {
  await t.step("options", () => {
    assert.throws(() => new SseChannel({ historySize: -1 }), {
      name: "RangeError",
      message:
        "Cannot create SseChannel: `historySize` must be a non-negative integer, got -1",
    });
    assert.throws(
      () => new SseChannel({ historyBytes: 10, maxBufferedAmount: 5 }),
      {
        name: "RangeError",
        message:
          "Cannot create SseChannel: `maxBufferedAmount` (5) must be at least `historyBytes` (10), or a resuming client could never catch up",
      },
    );
    assert.throws(
      () => new SseChannel({ headers: { connection: "close" } }),
      TypeError,
    );
  });
  const { channel, epoch } = await localChannel({ keepAlive: 0 });
  await t.step("events and topics", () => {
    assert.throws(() => channel.send({ event: "a\nb", data: 1 }), {
      name: "TypeError",
      message: 'Cannot encode event: `event` contains a line break: "a\\nb"',
    });
    assert.throws(() => channel.send({ id: "a\nb", data: 1 }), TypeError);
    assert.throws(() => channel.send({ data: 1 }, { topic: 5 as never }), {
      name: "TypeError",
      message: "Cannot send event: a topic must be a string, got 5",
    });
    assert.throws(
      () =>
        channel.connect(new Request("http://x/"), { topics: "news" as never }),
      {
        name: "TypeError",
        message: "Cannot connect: `topics` must be an array of strings",
      },
    );
    assert.equal(channel.send({ data: "still fine" }), `${epoch}-1`);
  });
  channel.close();
});

Deno.test("SseChannel frees a dropped or departed client's state", async () => {
  const channel = new SseChannel({ keepAlive: 10 });
  const response = channel.connect(new Request("http://x/"));
  const reader = response.body!.getReader();
  const read = reader.read();
  await reader.cancel();
  await read;
  assert.equal(channel.size, 0);
  channel.close();
  // The keep-alive timer is gone too, or the sanitizer fails this test.
  await aborted(AbortSignal.abort());
});

Deno.test("SseChannel keeps 500 idle clients alive with one timer", async () => {
  const realSetInterval = globalThis.setInterval;
  let timers = 0;
  globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
    timers++;
    return realSetInterval(...args);
  }) as typeof setInterval;
  const channel = new SseChannel({ keepAlive: 30 });
  try {
    const readers = Array.from(
      { length: 500 },
      () => new StreamReader(channel.connect(new Request("http://x/")).body!),
    );
    await Promise.all(readers.map((reader) => reader.until("-0\n\n")));
    await Promise.all(readers.map((reader) => reader.until(":\n")));
    assert.equal(timers, 1);
  } finally {
    globalThis.setInterval = realSetInterval;
    channel.close();
  }
});

Deno.test("SseChannel resets a client whose id is from before a restart", async () => {
  // A process that ran, sent three events, and went away with its client.
  const before = await localChannel({ keepAlive: 0 });
  for (let i = 1; i <= 3; i++) before.channel.send({ data: `old ${i}` });
  before.channel.close();
  // Its successor has sent five events of its own by the time the client
  // comes back: with ids counted afresh, "…-2" would name the new event 2.
  const after = await localChannel({ keepAlive: 0 });
  for (let i = 1; i <= 5; i++) after.channel.send({ data: `new ${i}` });
  assert.notEqual(before.epoch, after.epoch);
  const reader = new StreamReader(
    after.channel.connect(
      new Request("http://x/", {
        headers: { "last-event-id": `${before.epoch}-2` },
      }),
    ).body!,
  );
  after.channel.close();
  const events = await reader.take();
  assert.deepEqual(events.map(({ event, id }) => [event, id]), [
    ["reset", `${after.epoch}-5`],
  ]);
  assert.match(events[0].data, /another run of this channel/);
});

Deno.test("SseChannel epochs differ between channels", () => {
  const epochs = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const channel = new SseChannel();
    const id = channel.send({ data: i });
    assert.match(id, /^[0-9a-z]{6}-1$/);
    epochs.add(id.slice(0, 6));
    channel.close();
  }
  assert.equal(epochs.size, 200);
});

Deno.test("SseChannel.sendLocal reaches the clients here, without an id or history", async (t) => {
  const { channel, epoch } = await localChannel({ keepAlive: 0 });
  const all = new StreamReader(channel.connect(new Request("http://x/")).body!);
  const news = new StreamReader(
    channel.connect(new Request("http://x/"), { topics: ["news"] }).body!,
  );
  channel.send({ data: "first" });
  channel.sendLocal({ event: "clients", data: { count: channel.size } });
  channel.sendLocal({ data: "sport only" }, { topic: "sport" });
  channel.send({ data: "second" });
  const resumed = new StreamReader(
    channel.connect(
      new Request("http://x/", { headers: { "last-event-id": `${epoch}-0` } }),
    ).body!,
  );
  await t.step("bad input", () => {
    assert.throws(() => channel.sendLocal({ id: "1", data: "x" }), {
      name: "TypeError",
      message:
        "Cannot send event: a local event has no id (clients keep their place in the channel), so `id` must be left out",
    });
    assert.throws(() => channel.sendLocal({ event: "a\nb", data: 1 }), {
      name: "TypeError",
    });
  });
  channel.close();
  assert.throws(() => channel.sendLocal({ data: 1 }), SseClosedError);
  const local = 'event: clients\ndata: {"count":2}\n\n';
  assert.equal(
    await all.rest(),
    `id: ${epoch}-0\n\nid: ${epoch}-1\ndata: first\n\n${local}` +
      `data: sport only\n\nid: ${epoch}-2\ndata: second\n\n`,
    "a client without topics takes every topic",
  );
  assert.equal(
    await news.rest(),
    `id: ${epoch}-0\n\nid: ${epoch}-1\ndata: first\n\n${local}` +
      `id: ${epoch}-2\ndata: second\n\n`,
  );
  assert.equal(
    await resumed.rest(),
    `id: ${epoch}-1\ndata: first\n\nid: ${epoch}-2\ndata: second\n\n`,
    "a local event is not replayed",
  );
});

Deno.test("SseChannel sends an event of an id alone, as encodeEvent does", async () => {
  const { channel, epoch } = await localChannel({ keepAlive: 0 });
  const client = new StreamReader(
    channel.connect(new Request("http://x/")).body!,
  );
  assert.equal(channel.send({ id: "7" }), "7");
  assert.equal(channel.send({ id: "" }), "");
  channel.close();
  assert.equal(await client.rest(), `id: ${epoch}-0\n\nid: 7\n\nid: \n\n`);
});
