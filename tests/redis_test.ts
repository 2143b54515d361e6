// Several channel instances, each behind its own Deno.serve, sharing one
// real redis-server through RedisBackplane; Redis is restarted mid-test.
import assert from "node:assert/strict";
import { createClient } from "redis";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { SseChannel } from "../mod.ts";
import { RedisBackplane } from "../redis.ts";
import { delay } from "./util.ts";

const found = await new Deno.Command("redis-server", { args: ["--version"] })
  .output().then((out) => out.success).catch(() => false);
const IN_CI = Deno.env.get("CI") === "true";
if (!found && !IN_CI) {
  console.warn(
    "Skipping the Redis tests: no redis-server on PATH (Debian: apt-get " +
      "install redis-server). Under CI=true they fail instead.",
  );
}

/** A redis-server on a free loopback port, without persistence. */
class Redis {
  readonly port: number;
  #process?: Deno.ChildProcess;

  constructor() {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = probe.addr.port;
    probe.close();
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.#process = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    for (let i = 0; i < 200; i++) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: this.port }))
          .close();
        return;
      } catch {
        await delay(25);
      }
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  async stop(): Promise<void> {
    this.#process?.kill("SIGKILL");
    await this.#process?.status;
    this.#process = undefined;
  }
}

/** One server instance: a channel on a RedisBackplane, served on a port. */
async function startInstance(redis: Redis) {
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
  const errors: unknown[] = [];
  const backplane = new RedisBackplane({
    client,
    reader,
    stream: "test",
    blockMs: 200,
    retryMs: 50,
    maxPending: 8,
    onError: (error) => errors.push(error),
  });
  const channel = new SseChannel({ backplane, keepAlive: 0 });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => channel.connect(request),
  );
  await delay(250); // the reader has found the end of the stream
  return {
    channel,
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

/** A client of one instance, parsing events as they arrive. */
async function listen(url: URL, lastId?: string) {
  const headers: HeadersInit = lastId ? { "last-event-id": lastId } : {};
  const response = await fetch(url, { headers });
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  const reader = response.body!.pipeThrough(new TextDecoderStream())
    .getReader();
  const reading = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parser.feed(value);
    }
  })();
  return {
    events,
    data: () => events.filter((e) => !e.event).map((e) => e.data),
    async until(count: number) {
      for (let i = 0; i < 400 && this.data().length < count; i++) {
        await delay(10);
      }
      return this.data();
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

Deno.test({
  name: "Channels on one Redis share every event",
  ignore: !found && !IN_CI,
  async fn(t) {
    assert.ok(found, "CI needs redis-server: .ci/run installs it with apt");
    const redis = new Redis();
    await redis.start();
    const instances = [
      await startInstance(redis),
      await startInstance(redis),
      await startInstance(redis),
    ];
    const [a, b, c] = instances;
    try {
      await t.step(
        "every client gets every event once, each sender's in order",
        async () => {
          const clients = await Promise.all(
            instances.map(({ url }) => listen(url)),
          );
          await delay(50);
          for (let i = 1; i <= 10; i++) {
            instances.forEach(({ channel }, n) =>
              channel.send({ data: `${"abc"[n]}-${i}` })
            );
            await delay(1);
          }
          for (const client of clients) {
            const data = await client.until(30);
            assert.equal(data.length, 30);
            for (const sender of ["a", "b", "c"]) {
              assert.deepEqual(from(sender, data), sent(sender, 1, 10));
            }
            await client.leave();
          }
        },
      );

      await t.step(
        "a client moved to another instance resumes exactly",
        async () => {
          const moving = await listen(a.url);
          const watcher = await listen(b.url);
          await delay(50);
          for (let i = 11; i <= 15; i++) {
            a.channel.send({ data: `a-${i}` });
            c.channel.send({ data: `c-${i}` });
          }
          assert.equal((await moving.until(10)).length, 10);
          const last = moving.events.at(-1)!.id!;
          await moving.leave();
          for (let i = 16; i <= 20; i++) {
            a.channel.send({ data: `a-${i}` });
            c.channel.send({ data: `c-${i}` });
          }
          await watcher.until(20); // b has heard all of it
          const resumed = await listen(b.url, last);
          const data = await resumed.until(10);
          assert.deepEqual(from("a", data), sent("a", 16, 20));
          assert.deepEqual(from("c", data), sent("c", 16, 20));
          assert.equal(data.length, 10);
          await resumed.leave();
          await watcher.leave();
        },
      );

      await t.step("a Redis restart loses nothing silently", async () => {
        const onA = await listen(a.url);
        const onB = await listen(b.url);
        await delay(50);
        a.channel.send({ data: "a-21" });
        await onB.until(1);
        await redis.stop();
        // Twelve events while Redis is down: a keeps the last eight to publish.
        for (let i = 22; i <= 33; i++) a.channel.send({ data: `a-${i}` });
        // Local clients are served all the same.
        assert.deepEqual(await onA.until(13), sent("a", 21, 33));
        await redis.start();
        for (let i = 34; i <= 36; i++) {
          a.channel.send({ data: `a-${i}` });
          await delay(20);
        }
        await onB.until(12);
        // Some of what a could not publish was dropped: b must say so.
        assert.equal(from("a", onB.data()).at(-1), "a-36");
        // b has every event of a, or was told with a reset before any gap.
        let expected = 21;
        for (const event of onB.events) {
          if (event.event === "reset") {
            expected = -1; // whatever comes next is fine: it was told
            continue;
          }
          if (event.event) continue;
          const n = Number(event.data.slice(2));
          if (expected !== -1) assert.equal(n, expected, "a silent gap");
          expected = n + 1;
        }
        assert.ok(onB.events.some((event) => event.event === "reset"));
        await onA.leave();
        await onB.leave();
      });
    } finally {
      for (const instance of instances) await instance.stop();
      await redis.stop();
    }
  },
});

/** Runs `deno run -A demo.ts --redis …` on a free port; resolves its origin. */
async function startDemo(redis: Redis) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../demo.ts", import.meta.url).pathname,
      "--port",
      "0",
      "--redis",
      redis.url,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let banner = "";
  while (!banner.includes("Press Ctrl-C")) {
    const { value, done } = await stdout.read();
    if (done) throw new Error(`The demo exited: ${await stderr}`);
    banner += value;
  }
  const origin = banner.match(/page: +(http:\/\/[^/]+)\//)![1];
  return {
    origin,
    async stop() {
      child.kill("SIGINT");
      while (!(await stdout.read()).done);
      assert.equal((await child.status).code, 0);
      return await stderr;
    },
  };
}

Deno.test({
  name: "Two demos started with --redis share the broadcast page",
  ignore: !found && !IN_CI,
  async fn() {
    assert.ok(found, "CI needs redis-server: .ci/run installs it with apt");
    const redis = new Redis();
    await redis.start();
    const demos = [await startDemo(redis), await startDemo(redis)];
    try {
      const client = await listen(
        new URL("/broadcast/events", demos[1].origin),
      );
      await delay(300); // the other demo's reader has found the stream's end
      const posted = await fetch(`${demos[0].origin}/broadcast/messages`, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: "hello from the first demo",
      });
      assert.equal(posted.status, 201);
      await posted.body?.cancel();
      for (let i = 0; i < 400; i++) {
        if (client.events.some((e) => e.event === "message")) break;
        await delay(10);
      }
      const message = client.events.find((e) => e.event === "message");
      assert.equal(JSON.parse(message!.data).text, "hello from the first demo");
      await client.leave();
    } finally {
      for (const demo of demos) {
        assert.match(await demo.stop(), /broadcast shared through Redis/);
      }
      await redis.stop();
    }
  },
});
