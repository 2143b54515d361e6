// Channels on an ordered backplane, in process: an order kept in memory
// whose entries reach each instance only when the test says, so that
// fast-check can try every lag between instances.
import assert from "node:assert/strict";
import fc from "fast-check";
import type { EventSourceMessage } from "eventsource-parser";
import {
  SseChannel,
  type SseChannelOptions,
  SseClosedError,
  type SseOrderedBackplane,
  type SseOrderedEntry,
  type SseOrderedPublishOptions,
  type SseOrderedReceiver,
} from "../mod.ts";
import { delay, listen } from "./util.ts";

/** One order, shared by the instances that join it. */
class Order {
  entries: SseOrderedEntry[] = [];

  /** Appends an entry; `skip` leaves a hole in the positions, as a loss. */
  append(body: string, topic?: string, skip = 0): string {
    const last = Number(this.entries.at(-1)?.position ?? 0);
    const position = String(last + 1 + skip);
    this.entries.push({ position, body, topic });
    return position;
  }
}

/** An instance's view of the order: entries arrive when `deliver` says. */
class Member implements SseOrderedBackplane {
  readonly ordered = true as const;
  receiver?: SseOrderedReceiver;
  /** How many entries of the order this member has delivered. */
  at = 0;
  history = 0;
  closed = false;

  constructor(readonly order: Order, readonly startAtOnce = true) {}

  publish(body: string, options?: SseOrderedPublishOptions): Promise<string> {
    return Promise.resolve(this.order.append(body, options?.topic));
  }

  subscribe(receiver: SseOrderedReceiver, history: number): void {
    this.receiver = receiver;
    this.history = history;
    if (this.startAtOnce) this.start();
  }

  start(): void {
    const { entries } = this.order;
    this.at = entries.length;
    const past = entries.slice(Math.max(0, entries.length - this.history));
    const after = entries.at(-past.length - 1)?.position ?? "0";
    this.receiver!.start(past, after);
  }

  /** Delivers up to `count` more entries of the order. */
  deliver(count = Infinity): void {
    while (count-- > 0 && this.at < this.order.entries.length) {
      this.receiver!.entry(this.order.entries[this.at++]);
    }
  }

  compare(a: string, b: string): number {
    return /^\d+$/.test(a) && /^\d+$/.test(b) ? Number(a) - Number(b) : NaN;
  }

  close(): void {
    this.closed = true;
  }
}

/** A channel on its own member of `order` (a new order by default). */
function instance(order = new Order(), options: SseChannelOptions = {}) {
  const member = new Member(order);
  return {
    order,
    member,
    channel: new SseChannel({ ...options, backplane: member, keepAlive: 0 }),
  };
}

type Step = "sendA" | "sendB" | "toA" | "toB" | "toC" | "joinC" | "move";

Deno.test("A client moved between instances of one order gets it exactly, once", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.constantFrom<Step>(
          "sendA",
          "sendB",
          "toA",
          "toB",
          "toC",
          "joinC",
          "move",
        ),
        { maxLength: 50 },
      ),
      async (steps) => {
        const order = new Order();
        const members: Member[] = [new Member(order), new Member(order)];
        const channels = members.map((backplane) =>
          new SseChannel({ backplane, keepAlive: 0 })
        );
        const received: EventSourceMessage[] = [];
        let at = 0;
        let client = listen(channels[0]);
        let lastId: string | undefined; // as EventSource keeps it
        for (const step of steps) {
          if (step === "sendA" || step === "sendB") {
            const sender = channels[step === "sendA" ? 0 : 1];
            await sender.publish({
              data: `${step.at(-1)}${order.entries.length}`,
            });
          } else if (step === "joinC" && members.length === 2) {
            members.push(new Member(order)); // starts from the order's past
            channels.push(new SseChannel({ backplane: members[2] }));
          } else if (step.startsWith("to")) {
            members["ABC".indexOf(step.at(-1)!)]?.deliver(1);
          } else if (step === "move") {
            await client.leave();
            received.push(...client.events);
            lastId = client.lastId() ?? lastId;
            at = (at + 1) % channels.length;
            client = listen(channels[at], lastId);
          }
        }
        for (const member of members) member.deliver();
        await delay(0);
        for (const channel of channels) channel.close();
        await client.done;
        received.push(...client.events);

        assert.deepEqual(received.filter((e) => e.event === "reset"), []);
        assert.deepEqual(
          received.map((event) => [event.id, event.data]),
          order.entries.map((
            entry,
          ) => [entry.position, entry.body.slice(6, -2)]),
          "every event of the order, once, in order",
        );
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("Clients of every instance see one sequence, whoever sent", async () => {
  const order = new Order();
  const members = [new Member(order), new Member(order), new Member(order)];
  const channels = members.map((backplane) =>
    new SseChannel({ backplane, keepAlive: 0 })
  );
  const clients = channels.flatMap((
    channel,
  ) => [listen(channel), listen(channel)]);
  const ids = await Promise.all(
    Array.from(
      { length: 30 },
      (_, i) =>
        channels[i % 3].publish({ event: "note", data: `from ${i % 3}: ${i}` }),
    ),
  );
  // Each instance hears the order at its own pace, in bursts.
  members[0].deliver();
  members[1].deliver(7);
  members[2].deliver(29);
  members[1].deliver();
  members[2].deliver();
  await delay(0);
  for (const channel of channels) channel.close();
  const expected = ids.map((id, i) => ({
    event: "note",
    id,
    data: `from ${i % 3}: ${i}`,
  }));
  for (const client of clients) {
    await client.done;
    assert.deepEqual(
      client.events.map(({ event, id, data }) => ({ event, id, data })),
      expected,
    );
  }
});

Deno.test("An ordered channel delivers an event once ordered, not when published", async () => {
  const { member, channel } = instance();
  const client = listen(channel);
  assert.equal(await channel.publish({ data: "one" }), "1");
  await delay(0);
  assert.equal(client.raw(), "id: 0\n\n", "nothing until the order has it");
  member.deliver();
  channel.close();
  await client.done;
  assert.equal(client.raw(), "id: 0\n\nid: 1\ndata: one\n\n");
});

Deno.test("A new instance resumes a client from the order's recent past", async () => {
  const order = new Order();
  const a = new SseChannel({ backplane: new Member(order), keepAlive: 0 });
  const client = listen(a);
  for (let i = 1; i <= 5; i++) await a.publish({ data: `e${i}` });
  a.close();
  await client.done;
  // It saw nothing: its instance went away before delivering.
  assert.equal(client.lastId(), "0");
  const b = new SseChannel({
    backplane: new Member(order),
    historySize: 3,
    keepAlive: 0,
  });
  const resumed = listen(b, "2");
  const tooOld = listen(b, "1");
  b.close();
  await resumed.done;
  await tooOld.done;
  assert.equal(
    resumed.raw(),
    "id: 3\ndata: e3\n\nid: 4\ndata: e4\n\nid: 5\ndata: e5\n\n",
  );
  assert.equal(
    tooOld.raw(),
    'event: reset\nid: 5\ndata: {"reason":"the last event id \\"1\\" is unknown or too old"}\n\n',
  );
});

Deno.test("Clients that connect before the order starts wait for it", async () => {
  const order = new Order();
  order.append("data: old\n\n");
  order.append("data: older\n\n");
  const member = new Member(order, false);
  const channel = new SseChannel({ backplane: member, keepAlive: 0 });
  let ready = false;
  channel.ready.then(() => ready = true);
  const fresh = listen(channel);
  const resuming = listen(channel, "1");
  const stranger = listen(channel, "not-an-id");
  await delay(0);
  assert.equal(ready, false);
  assert.equal(fresh.raw() + resuming.raw() + stranger.raw(), "");
  member.start();
  await delay(0);
  assert.equal(ready, true);
  channel.close();
  await Promise.all([fresh.done, resuming.done, stranger.done]);
  assert.equal(fresh.raw(), "id: 2\n\n");
  assert.equal(resuming.raw(), "id: 2\ndata: older\n\n");
  assert.equal(
    stranger.raw(),
    'event: reset\nid: 2\ndata: {"reason":"the last event id \\"not-an-id\\" is not one of ours"}\n\n',
  );
});

Deno.test("A client ahead of its instance skips what it has, and is reset if its id never comes", async (t) => {
  await t.step("the id comes: the client gets what follows it", async () => {
    const { order, member, channel } = instance();
    for (let i = 1; i <= 4; i++) order.append(`data: e${i}\n\n`);
    const client = listen(channel, "2"); // it saw 1 and 2 elsewhere
    member.deliver();
    channel.close();
    await client.done;
    assert.equal(client.raw(), "id: 3\ndata: e3\n\nid: 4\ndata: e4\n\n");
  });

  await t.step(
    "the order passes it by: a reset, then what follows",
    async () => {
      const { order, member, channel } = instance();
      order.append("data: e1\n\n");
      order.append("data: e3\n\n", undefined, 1); // position 3; 2 never was
      const client = listen(channel, "2");
      member.deliver();
      channel.close();
      await client.done;
      assert.equal(
        client.raw(),
        'event: reset\nid: 1\ndata: {"reason":"the last event id is not in the order"}\n\n' +
          "id: 3\ndata: e3\n\n",
      );
    },
  );

  await t.step(
    "with topics, ids still name the place in the order",
    async () => {
      const { order, member, channel } = instance();
      order.append("data: a1\n\n", "a");
      order.append("data: b2\n\n", "b");
      order.append("data: b3\n\n", "b");
      order.append("data: a4\n\n", "a");
      const client = listen(channel, "2", ["a"]);
      member.deliver();
      channel.close();
      await client.done;
      assert.equal(client.raw(), "id: 4\ndata: a4\n\n");
    },
  );
});

Deno.test("A loss the backplane reports resets every client at the current position", async () => {
  const { member, channel } = instance();
  const client = listen(channel);
  await channel.publish({ data: "e1" });
  member.deliver();
  member.receiver!.lost("Redis lost events");
  await channel.publish({ data: "e2" });
  member.deliver();
  channel.close();
  await client.done;
  assert.equal(
    client.raw(),
    "id: 0\n\nid: 1\ndata: e1\n\n" +
      'event: reset\nid: 1\ndata: {"reason":"Redis lost events"}\n\n' +
      "id: 2\ndata: e2\n\n",
  );
});

Deno.test("An ordered channel refuses what would give it a wrong id", async () => {
  const member = new Member(new Order());
  const channel = new SseChannel({ backplane: member });
  assert.throws(() => channel.send({ data: 1 }), {
    name: "TypeError",
    message:
      "Cannot send event: on an ordered backplane an event has no id until the backplane orders it; use `await channel.publish(event)`",
  });
  assert.throws(() => channel.publish({ id: "mine", data: 1 }), {
    name: "TypeError",
    message:
      "Cannot send event: on an ordered backplane an event's id is its position, so `id` must be left out",
  });
  assert.throws(() => channel.publish({ data: 1 }, { topic: 7 as never }), {
    name: "TypeError",
    message: "Cannot send event: a topic must be a string, got 7",
  });
  assert.throws(() => channel.publish({ event: "x" }), TypeError);
  channel.close();
  assert.equal(member.closed, true);
  assert.throws(() => channel.publish({ data: 1 }), SseClosedError);
  await channel.ready; // resolved by close, never rejected
});

Deno.test("publish() on a channel without a backplane resolves with send's id", async () => {
  const channel = new SseChannel();
  const first = await channel.publish({ data: "a" });
  assert.match(first, /^[0-9a-z]{6}-1$/);
  assert.equal(await channel.publish({ id: "x", data: "b" }), "x");
  // An aborted signal sends nothing: the next id is the second.
  const aborted = AbortSignal.abort(new Error("too late"));
  await assert.rejects(channel.publish({ data: "c" }, { signal: aborted }), {
    message: "too late",
  });
  assert.equal(await channel.publish({ data: "d" }), first.replace(/1$/, "3"));
  channel.close();
  assert.throws(() => channel.publish({ data: "c" }), SseClosedError);
});

Deno.test("SseChannel refuses a backplane without its methods", () => {
  assert.throws(
    () => new SseChannel({ backplane: {} as never }),
    {
      name: "TypeError",
      message:
        "Cannot create SseChannel: `backplane` must have publish, subscribe and close methods",
    },
  );
  const { compare: _, ...noCompare } = new Member(new Order());
  assert.throws(
    () =>
      new SseChannel({
        backplane: {
          ...noCompare,
          ordered: true,
          publish: () => Promise.resolve("1"),
          subscribe() {},
          close() {},
        } as never,
      }),
    {
      name: "TypeError",
      message:
        "Cannot create SseChannel: an ordered `backplane` must have a compare method",
    },
  );
});

Deno.test("A gap the backplane reports stays a gap for every later resume", async (t) => {
  const { order, member, channel } = instance();
  for (let i = 1; i <= 3; i++) await channel.publish({ data: `e${i}` });
  member.deliver();
  member.receiver!.lost("Redis lost events"); // 4 is lost
  order.append("data: e5\n\n", undefined, 1);
  order.append("data: e6\n\n");
  member.deliver();
  const resume = (last: string) => {
    const client = listen(channel, last);
    return async () => {
      await client.done;
      return client.raw();
    };
  };
  const before = resume("2");
  const atGap = resume("3");
  const after = resume("5");
  channel.close();
  const lost = "events after the last event id were lost by the backplane";
  await t.step(
    "from before the gap: a reset, never a replay across it",
    async () => {
      assert.equal(
        await before(),
        `event: reset\nid: 6\ndata: {"reason":"${lost}"}\n\n`,
      );
    },
  );
  await t.step("from the last event before the gap: a reset", async () => {
    assert.equal(
      await atGap(),
      `event: reset\nid: 6\ndata: {"reason":"${lost}"}\n\n`,
    );
  });
  await t.step("from after the gap: what follows", async () => {
    assert.equal(await after(), "id: 6\ndata: e6\n\n");
  });
});

Deno.test("A client ahead of its instance waits a bounded time and distance", async (t) => {
  await t.step(
    "an id the order never reaches: a reset after catchUpTimeout",
    async () => {
      const { member, channel } = instance(new Order(), {
        catchUpTimeout: 30,
      });
      await channel.publish({ data: "e1" });
      member.deliver();
      const client = listen(channel, "99999999999999");
      await delay(60);
      await channel.publish({ data: "e2" });
      member.deliver();
      channel.close();
      await client.done;
      assert.equal(
        client.raw(),
        'event: reset\nid: 1\ndata: {"reason":"the last event id is ahead of this server, which did not catch up within 30 ms"}\n\n' +
          "id: 2\ndata: e2\n\n",
      );
    },
  );
  await t.step("further ahead than historySize entries: a reset", async () => {
    const { member, channel } = instance(new Order(), { historySize: 2 });
    const client = listen(channel, "50");
    for (let i = 1; i <= 4; i++) await channel.publish({ data: `e${i}` });
    member.deliver();
    channel.close();
    await client.done;
    assert.equal(
      client.raw(),
      'event: reset\nid: 2\ndata: {"reason":"the last event id is too far ahead of this server"}\n\n' +
        "id: 3\ndata: e3\n\nid: 4\ndata: e4\n\n",
    );
  });
  await t.step(
    "an instance that catches up in time: no reset, no timer left",
    async () => {
      const { order, member, channel } = instance();
      order.append("data: e1\n\n");
      order.append("data: e2\n\n");
      const client = listen(channel, "1");
      await delay(10);
      member.deliver();
      channel.close();
      await client.done;
      assert.equal(client.raw(), "id: 2\ndata: e2\n\n");
    },
  );
});

Deno.test("publish() with a signal passes it to an ordered backplane", async () => {
  const seen: (AbortSignal | undefined)[] = [];
  const member = new Member(new Order());
  const publish = member.publish.bind(member);
  member.publish = (body, options) => {
    seen.push(options?.signal);
    return publish(body, options);
  };
  const channel = new SseChannel({ backplane: member, keepAlive: 0 });
  const controller = new AbortController();
  await channel.publish({ data: 1 }, { signal: controller.signal });
  assert.deepEqual(seen, [controller.signal]);
  controller.abort(new Error("gave up"));
  await assert.rejects(
    channel.publish({ data: 2 }, { signal: controller.signal }),
    { message: "gave up" },
  );
  assert.equal(seen.length, 1, "an aborted signal publishes nothing");
  assert.throws(() => channel.publish({ data: 3 }, { signal: {} as never }), {
    name: "TypeError",
    message: "Cannot send event: `signal` must be an AbortSignal",
  });
  channel.close();
});

Deno.test("SseChannel.stats counts a client ahead once it resumes or is reset, and a loss per client", async () => {
  const { order, member, channel } = instance(new Order(), {
    catchUpTimeout: 30,
  });
  for (let i = 1; i <= 3; i++) order.append(`data: e${i}\n\n`);
  const caughtUp = listen(channel, "2"); // it saw 1 and 2 elsewhere
  const never = listen(channel, "99999999999999");
  const counts = () => {
    const { resumes, resets, events } = channel.stats;
    return { resumes, resets, events };
  };
  assert.deepEqual(counts(), { resumes: 0, resets: 0, events: 0 });
  member.deliver();
  await delay(0);
  assert.deepEqual(counts(), { resumes: 1, resets: 0, events: 3 });
  await delay(60);
  assert.deepEqual(counts(), { resumes: 1, resets: 1, events: 3 });
  member.receiver!.lost("Redis lost events");
  assert.deepEqual(counts(), { resumes: 1, resets: 3, events: 3 });
  channel.close();
  await Promise.all([caughtUp.done, never.done]);
  assert.equal(
    caughtUp.events.filter((event) => event.event === "reset").length,
    1,
  );
  assert.equal(
    never.events.filter((event) => event.event === "reset").length,
    2,
  );
});
