// Several channel instances, each behind its own Deno.serve, sharing one
// real redis-server through RedisBackplane; Redis is restarted mid-test.
import assert from "node:assert/strict";
import { createClient } from "redis";
import type { EventSourceMessage } from "eventsource-parser";
import { SseChannel } from "../mod.ts";
import { RedisBackplane, type RedisBackplaneOptions } from "../redis.ts";
import { delay } from "./util.ts";
import { StreamReader } from "./stream_reader.ts";
import { startDemoProcess } from "./demo_util.ts";
import { type Redis, redisTest } from "./redis_util.ts";

type InstanceOptions = Partial<RedisBackplaneOptions> & {
  /** The Redis stream key: each test or step has its own. */
  stream: string;
  /** Holds every XREAD until it resolves: an instance that falls behind. */
  holdReads?: Promise<void>;
};

/** A stream key of a test or step's own, from its name. */
function streamOf(t: Deno.TestContext): string {
  return t.name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
}

/** One server instance: a channel on a RedisBackplane, served on a port. */
async function startInstance(redis: Redis, options: InstanceOptions) {
  const connect = async () => {
    const client = createClient({
      url: redis.url,
      socket: { reconnectStrategy: () => 50 },
      // Fail at once while Redis is down: the backplane keeps what it could
      // not publish, up to maxPending.
      disableOfflineQueue: true,
    });
    client.on("error", () => {}); // reconnects are reported to onError
    await client.connect();
    return client;
  };
  const client = await connect();
  const reader = await connect();
  const { holdReads } = options;
  const errors: unknown[] = [];
  const backplane = new RedisBackplane({
    client,
    reader: holdReads === undefined ? reader : {
      async sendCommand(args: string[]) {
        if (args[0] === "XREAD") await holdReads;
        return await reader.sendCommand(args);
      },
    },
    blockMs: 200,
    retryMs: 50,
    maxPending: 8,
    onError: (error) => errors.push(error),
    ...options,
  });
  const channel = new SseChannel({ backplane, keepAlive: 0 });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => channel.connect(request),
  );
  await channel.ready; // it has read the stream's recent past
  return {
    channel,
    backplane,
    errors,
    url: new URL(`http://127.0.0.1:${server.addr.port}/`),
    async stop() {
      channel.close();
      await server.shutdown();
      client.destroy();
      reader.destroy();
      await backplane.finished;
    },
  };
}

type Instance = Awaited<ReturnType<typeof startInstance>>;

/** Runs `fn` with three instances on `stream`, and stops them after. */
async function withInstances(
  redis: Redis,
  stream: string,
  fn: (instances: Instance[]) => Promise<void>,
): Promise<void> {
  const instances = [
    await startInstance(redis, { stream }),
    await startInstance(redis, { stream }),
    await startInstance(redis, { stream }),
  ];
  try {
    await fn(instances);
  } finally {
    for (const instance of instances) await instance.stop();
  }
}

/** A client of one instance, reading events as they arrive. */
async function listen(url: URL, lastId?: string) {
  const headers: HeadersInit = lastId ? { "last-event-id": lastId } : {};
  const reader = await StreamReader.fetch(url, { headers });
  const reading = reader.follow();
  const plain = () => reader.events.filter((e) => !e.event);
  const data = () => plain().map((e) => e.data);
  return {
    reader,
    events: reader.events,
    /** The events other than resets, as [id, data]. */
    seen: () => plain().map((e) => [e.id, e.data]),
    data,
    /** Waits, at most 5 s, for `count` events other than resets. */
    async until(count: number) {
      await reader.waitFor(() => data().length >= count, 5000);
      return data();
    },
    async leave() {
      await reader.cancel();
      await reading;
    },
  };
}

/** The events of one sender, in the order a client received them. */
function from(sender: string, data: string[]): string[] {
  return data.filter((d) => d.startsWith(`${sender}-`));
}

function sent(sender: string, from: number, to: number): string[] {
  return Array.from(
    { length: to - from + 1 },
    (_, i) => `${sender}-${from + i}`,
  );
}

redisTest(
  "Channels on one Redis deliver every event once, in one order",
  async (redis, t) => {
    await t.step(
      "clients of every instance see one sequence, with the ids publish gave",
      async (t) => {
        await withInstances(redis, streamOf(t), async (instances) => {
          const [a] = instances;
          const clients = await Promise.all(
            instances.flatMap(({ url }) => [listen(url), listen(url)]),
          );
          await delay(50);
          // Three senders at once: the stream decides the order.
          const published: Promise<string>[] = [];
          const data: string[] = [];
          for (let i = 1; i <= 10; i++) {
            instances.forEach(({ channel }, n) => {
              data.push(`${"abc"[n]}-${i}`);
              published.push(channel.publish({ data: data.at(-1) }));
            });
          }
          const ids = await Promise.all(published);
          assert.equal(new Set(ids).size, 30);
          const first = await clients[0].until(30);
          const sequence = clients[0].seen();
          for (const client of clients) {
            await client.until(30);
            assert.deepEqual(client.seen(), sequence);
            await client.leave();
          }
          for (const sender of ["a", "b", "c"]) {
            assert.deepEqual(from(sender, first), sent(sender, 1, 10));
          }
          // Each event has the id its publish() resolved with, and ids grow.
          const idOf = new Map(data.map((d, i) => [d, ids[i]]));
          for (const [id, d] of sequence) assert.equal(id, idOf.get(d!));
          for (let i = 1; i < sequence.length; i++) {
            assert.ok(
              a.backplane.compare(sequence[i - 1][0]!, sequence[i][0]!) < 0,
            );
          }
        });
      },
    );

    await t.step(
      "a client moved to another instance resumes exactly",
      async (t) => {
        await withInstances(redis, streamOf(t), async ([a, b, c]) => {
          const moving = await listen(a.url);
          const watcher = await listen(b.url);
          await delay(50);
          const publishAC = (from: number, to: number) =>
            Promise.all(
              sent("a", from, to).flatMap((d, i) => [
                a.channel.publish({ data: d }),
                c.channel.publish({ data: `c-${from + i}` }),
              ]),
            );
          await publishAC(11, 15);
          assert.equal((await moving.until(10)).length, 10);
          const last = moving.events.at(-1)!.id!;
          await moving.leave();
          await publishAC(16, 20);
          await watcher.until(20); // b has read all of it
          const resumed = await listen(b.url, last);
          await resumed.until(10);
          assert.deepEqual(
            [...moving.seen(), ...resumed.seen()],
            watcher.seen(),
            "the moved client has what the watcher has, once, in its order",
          );
          await resumed.leave();
          await watcher.leave();
        });
      },
    );

    await t.step(
      "a server started later resumes the client of another",
      async (t) => {
        const stream = streamOf(t);
        await withInstances(redis, stream, async ([a]) => {
          const client = await listen(a.url);
          await delay(50);
          await a.channel.publish({ data: "a-21" });
          await client.until(1);
          const last = client.events.at(-1)!.id!;
          await client.leave();
          const missed = await Promise.all(
            sent("a", 22, 24).map((d) => a.channel.publish({ data: d })),
          );
          const d = await startInstance(redis, { stream }); // reads the stream's past
          try {
            const resumed = await listen(d.url, last);
            await resumed.until(3);
            assert.deepEqual(
              resumed.seen(),
              missed.map((id, i) => [id, `a-${22 + i}`]),
            );
            await resumed.leave();
          } finally {
            await d.stop();
          }
        });
      },
    );

    await t.step(
      "through a Redis restart, clients stay and nothing is lost silently",
      async (t) => {
        await withInstances(redis, streamOf(t), async ([a, b]) => {
          const onA = await listen(a.url);
          const onB = await listen(b.url);
          await delay(50);
          await a.channel.publish({ data: "a-25" });
          await a.channel.publish({ data: "a-26" });
          await onB.until(2);
          await redis.stop();
          // Twelve events while Redis is down: a keeps the last eight.
          const publishing = sent("a", 27, 38).map((d) =>
            a.channel.publish({ data: d }).then(
              (id) => ({ id }),
              (error: Error) => ({ error: error.message }),
            )
          );
          // Clients are still served: one reconnects to b and resumes.
          const resumed = await listen(b.url, onB.events[0].id);
          assert.deepEqual(await resumed.until(1), ["a-26"]);
          await resumed.leave();
          await redis.start();
          const outcomes = await Promise.all(publishing);
          for (const outcome of outcomes.slice(0, 4)) {
            assert.deepEqual(outcome, {
              error:
                "Cannot publish event: Redis stayed unreachable while more than `maxPending` (8) events waited",
            });
          }
          for (const client of [onA, onB]) {
            await client.until(10);
            assert.deepEqual(
              client.data(),
              sent("a", 25, 26).concat(sent("a", 31, 38)),
            );
            // Redis forgot the stream: each instance says events may be lost,
            // before anything that came after.
            const kinds = client.events.map((e) => e.event ?? "message");
            assert.deepEqual(kinds, [
              "message",
              "message",
              "reset",
              ...Array(8).fill("message"),
            ]);
            assert.match(client.events[2].data, /Redis lost events/);
            assert.deepEqual(
              client.seen().slice(2).map(([id]) => id),
              outcomes.slice(4).map((outcome) =>
                (outcome as { id: string }).id
              ),
            );
            await client.leave();
          }
          assert.ok(a.errors.length > 0, "the outage was reported to onError");
        });
      },
    );
  },
);

redisTest(
  "An instance that falls behind the stream's cap tells its clients",
  async (redis) => {
    let release!: () => void;
    const holdReads = new Promise<void>((resolve) => release = resolve);
    const options = { stream: "capped", maxLen: 20 };
    const ahead = await startInstance(redis, options);
    const behind = await startInstance(redis, { ...options, holdReads });
    try {
      const client = await listen(behind.url);
      const watcher = await listen(ahead.url);
      await delay(50);
      const data = sent("e", 1, 300);
      for (const d of data) await ahead.channel.publish({ data: d });
      await watcher.until(300);
      release(); // the stream has been trimmed past what `behind` read
      for (let i = 0; i < 500 && !client.data().includes("e-300"); i++) {
        await delay(10);
      }
      assert.equal(client.events[0].event, "reset");
      assert.equal(
        JSON.parse(client.events[0].data).reason,
        "events left the Redis stream before this server read them",
      );
      // After the reset, an unbroken run up to the last event.
      const got = client.data();
      assert.ok(got.length >= 20 && got.length < 300);
      assert.deepEqual(got, data.slice(-got.length));
      assert.deepEqual(client.seen(), watcher.seen().slice(-got.length));
      await client.leave();
      await watcher.leave();
    } finally {
      release();
      await ahead.stop();
      await behind.stop();
    }
  },
);

redisTest(
  "An append that Redis did not confirm is tried again and kept once",
  async (redis) => {
    const real = await createClient({ url: redis.url }).connect();
    const reader = await createClient({ url: redis.url }).connect();
    // The first append runs in Redis but its reply is lost; the fifth is
    // refused without running, while the next, sent with it, runs.
    let appends = 0;
    const client = {
      async sendCommand(args: string[]) {
        if (args[0] !== "EVALSHA") return await real.sendCommand(args);
        appends++;
        if (appends === 5) throw new Error("OOM command not allowed");
        const reply = await real.sendCommand(args);
        if (appends === 1) throw new Error("Socket closed unexpectedly");
        return reply;
      },
    };
    const errors: unknown[] = [];
    const backplane = new RedisBackplane({
      client,
      reader,
      stream: "flaky",
      blockMs: 100,
      retryMs: 20,
      onError: (error) => errors.push(error),
    });
    const channel = new SseChannel({ backplane, keepAlive: 0 });
    await channel.ready;
    const body = channel.connect(new Request("http://x/")).body!;
    try {
      const first = await channel.publish({ data: "one" });
      const [second, third] = await Promise.all([
        channel.publish({ data: "two" }),
        channel.publish({ data: "three" }),
      ]);
      assert.equal(appends, 4, "one, one again, two, three");
      assert.match(String(errors[0]), /Socket closed unexpectedly/);
      const outcomes = await Promise.allSettled([
        channel.publish({ data: "four" }),
        channel.publish({ data: "five" }),
      ]);
      assert.equal(outcomes[0].status, "rejected");
      assert.match(
        String((outcomes[0] as PromiseRejectedResult).reason),
        /OOM command not allowed/,
      );
      assert.equal(outcomes[1].status, "fulfilled");
      const fifth = (outcomes[1] as PromiseFulfilledResult<string>).value;
      assert.equal(await real.sendCommand(["XLEN", "flaky"]), 4, "no copy");
      const events = new StreamReader(body);
      const text = await events.until("five");
      await events.cancel();
      assert.equal(
        text,
        `id: 0-0\n\nid: ${first}\ndata: one\n\nid: ${second}\ndata: two\n\n` +
          `id: ${third}\ndata: three\n\nid: ${fifth}\ndata: five\n\n`,
      );
    } finally {
      channel.close();
      reader.destroy();
      await backplane.finished;
      real.destroy();
    }
  },
);

redisTest(
  "Two demos started with --redis share the broadcast page",
  async (redis) => {
    const demos = [
      await startDemoProcess(["--redis", redis.url]),
      await startDemoProcess(["--redis", redis.url]),
    ];
    try {
      const client = await listen(
        new URL("/broadcast/events", demos[1].origin),
      );
      const posted = await fetch(`${demos[0].origin}/broadcast/messages`, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: "hello from the first demo",
      });
      assert.equal(posted.status, 201);
      const { id } = await posted.json();
      const isMessage = (e: EventSourceMessage) => e.event === "message";
      await client.reader.waitFor(() => client.events.some(isMessage), 4000);
      const message = client.events.find(isMessage);
      assert.equal(JSON.parse(message!.data).text, "hello from the first demo");
      assert.equal(message!.id, id, "the id the POST answered");
      await client.leave();
    } finally {
      for (const demo of demos) {
        const { code, log } = await demo.stop();
        assert.equal(code, 0);
        assert.match(log, /broadcast shared through Redis/);
      }
    }
  },
);

redisTest(
  "RedisBackplane tells its state, and withdraws an event it has not sent",
  async (redis, t) => {
    const instance = await startInstance(redis, { stream: streamOf(t) });
    const { backplane, channel } = instance;
    const states: string[] = [];
    backplane.addEventListener(
      "statechange",
      () => states.push(backplane.state),
    );
    const client = await listen(instance.url);
    try {
      assert.equal(backplane.state, "connected");
      await channel.publish({ data: "before" });
      await redis.stop();
      const state = () => backplane.state as string; // changes meanwhile
      for (let i = 0; i < 300 && state() !== "unreachable"; i++) {
        await delay(10);
      }
      assert.equal(state(), "unreachable");
      const controller = new AbortController();
      const withdrawn = channel.publish({ data: "withdrawn" }, {
        signal: controller.signal,
      });
      const kept = channel.publish({ data: "kept" });
      await delay(100); // tried meanwhile, and refused: Redis is away
      controller.abort(new Error("gave up"));
      await assert.rejects(withdrawn, { message: "gave up" });
      await redis.start();
      await kept;
      await channel.publish({ data: "after" });
      assert.deepEqual(await client.until(3), ["before", "kept", "after"]);
      assert.equal(backplane.state, "connected");
      assert.deepEqual(states, ["unreachable", "connected"]);
    } finally {
      await client.leave();
      await instance.stop();
    }
  },
);

/**
 * Waits, at most 5 s, for an event that matches, among those after the
 * first `from`.
 */
async function untilEvent(
  client: Awaited<ReturnType<typeof listen>>,
  match: (event: EventSourceMessage) => boolean,
  from = 0,
): Promise<EventSourceMessage> {
  const found = () => client.events.slice(from).find(match);
  if (await client.reader.waitFor(() => found() !== undefined, 5000)) {
    return found()!;
  }
  throw new Error(`No such event in ${JSON.stringify(client.events)}`);
}

function post(origin: string, body: string): Promise<Response> {
  return fetch(`${origin}/broadcast/messages`, {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body,
  });
}

redisTest(
  "The demo starts without Redis, answers 503 while it is away, and joins when it comes",
  async (redis) => {
    await redis.stop(); // the demo starts first
    const demo = await startDemoProcess(["--redis", redis.url]);
    let client: Awaited<ReturnType<typeof listen>> | undefined;
    try {
      const ticks = await fetch(`${demo.origin}/sse?count=2&intervalMs=1`);
      assert.match(await ticks.text(), /event: complete\n/);
      client = await listen(new URL("/broadcast/events", demo.origin));
      const backplane = (state: string) => (event: EventSourceMessage) =>
        event.event === "backplane" && JSON.parse(event.data).state === state;
      await untilEvent(client, backplane("connecting"));
      // Waits for Redis at most PUBLISH_TIMEOUT_MS, then withdraws it.
      const early = await post(demo.origin, "never sent");
      assert.equal(early.status, 503);
      assert.equal(
        await early.text(),
        "Service unavailable: Redis did not answer within 5000 ms; the message was not sent\n",
      );
      let from = client.events.length;
      await redis.start();
      await untilEvent(client, backplane("connected"), from);
      const sent = await post(demo.origin, "sent");
      assert.equal(sent.status, 201);
      await sent.body!.cancel();
      // Only a state that follows the stop counts: the demo may have found
      // Redis unreachable before it first started.
      from = client.events.length;
      await redis.stop();
      await untilEvent(client, backplane("unreachable"), from);
      const refused = await post(demo.origin, "refused");
      assert.equal(refused.status, 503);
      assert.equal(
        await refused.text(),
        "Service unavailable: this server cannot reach Redis now; the message was not sent\n",
      );
      from = client.events.length;
      await redis.start();
      await untilEvent(client, backplane("connected"), from);
      const again = await post(demo.origin, "again");
      assert.equal(again.status, 201);
      await again.body!.cancel();
      await untilEvent(
        client,
        (event) => event.event === "message" && event.data.includes("again"),
      );
      const texts = client.events.filter((event) => event.event === "message")
        .map((event) => JSON.parse(event.data).text);
      assert.deepEqual(texts, ["sent", "again"], "nothing withdrawn appears");
    } finally {
      await client?.leave();
      const { code, log } = await demo.stop();
      assert.equal(code, 0);
      assert.match(log, /WARN {2}broadcast: waiting for Redis at /);
      assert.match(log, /INFO {2}broadcast shared through Redis at /);
      assert.match(log, /WARN {2}broadcast: Redis at .* is unreachable: /);
    }
  },
);
