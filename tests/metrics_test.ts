// The demo's /metrics: the Prometheus text format, read by an npm parser
// after a strict look at every line, and counters that match what the test
// did to the demo.
import assert from "node:assert/strict";
import parsePrometheus from "parse-prometheus-text-format";
import { type Demo, MAX_MESSAGE_LENGTH } from "../demo.ts";
import { startDemoProcess, withDemo } from "./demo_util.ts";
import { redisTest } from "./redis_util.ts";
import { StreamReader } from "./stream_reader.ts";
import { delay } from "./util.ts";

const SAMPLE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)$/;

/** One family as the parser gives it. */
interface Family {
  name: string;
  help: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}

/**
 * Fetches `/metrics` and checks it line by line: a `# HELP` and a `# TYPE`
 * (counter or gauge) before each family's samples, counters named
 * `_total`, samples `name{labels} number`; then parses it.
 */
async function scrape(origin: string | URL): Promise<Map<string, Family>> {
  const response = await fetch(new URL("/metrics", origin));
  assert.equal(response.status, 200);
  assert.equal(
    response.headers.get("content-type"),
    "text/plain; version=0.0.4; charset=utf-8",
  );
  const text = await response.text();
  assert.ok(text.endsWith("\n"));
  let family = "";
  const seen = new Set<string>();
  for (const [i, line] of text.slice(0, -1).split("\n").entries()) {
    const help = line.match(/^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S/);
    const type = line.match(/^# TYPE (\S+) (counter|gauge)$/);
    if (help) {
      assert.ok(!seen.has(help[1]), `${help[1]} appears once`);
      seen.add(family = help[1]);
    } else if (type) {
      assert.equal(type[1], family, `line ${i + 1}: TYPE after HELP`);
      if (type[2] === "counter") assert.match(family, /_total$/);
    } else {
      assert.equal(line.match(SAMPLE)?.[1], family, `line ${i + 1}: ${line}`);
    }
  }
  const families = parsePrometheus(text) as Family[];
  assert.equal(families.length, seen.size);
  return new Map(families.map((family) => [family.name, family]));
}

/** The value of the sample of `name` with `labels`. */
function value(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const samples = families.get(name)?.metrics ?? [];
  const sample = samples.find((sample) =>
    JSON.stringify(sample.labels ?? {}) === JSON.stringify(labels)
  );
  assert.ok(sample, `${name} ${JSON.stringify(labels)}`);
  return Number(sample.value);
}

/** Whether the last message that `reader` got is `text` (cheap to ask). */
function lastMessageIs(reader: StreamReader, text: string): boolean {
  const last = reader.events.findLast((event) => event.event === "message");
  return last !== undefined && JSON.parse(last.data).text === text;
}

/** Posts `text` to the room as a client would, in process. */
async function post(demo: Demo, text: string): Promise<void> {
  const response = await demo.handler(
    new Request("http://localhost/broadcast/messages", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: text,
    }),
  );
  assert.equal(response.status, 201, await response.text());
}

Deno.test("/metrics counts what happened: streams, ticks, room clients, events, bytes, drops, resumes and resets", async () => {
  await withDemo(async ({ demo, url }) => {
    const room = new URL("/broadcast/events", url);
    // Three tick streams of two ticks each, to the end; HEAD opens none.
    for (let i = 0; i < 3; i++) {
      await (await fetch(new URL("/sse?count=2&intervalMs=5", url))).text();
    }
    await (await fetch(new URL("/sse", url), { method: "HEAD" })).text();

    const readers = [
      await StreamReader.fetch(room),
      await StreamReader.fetch(room),
    ];
    // A client that never reads, in process: it falls behind and is dropped.
    const stuck = (await demo.handler(new Request(room))).body!;
    // 1 MiB of messages (maxBufferedAmount) for the one that never reads.
    const message = "m".repeat(MAX_MESSAGE_LENGTH);
    const messages = Math.ceil(1_048_576 / MAX_MESSAGE_LENGTH) + 1;
    for (let i = 1; i <= messages; i++) {
      await post(demo, message);
      if (i % 20 === 0) await delay(0); // the others read meanwhile
    }
    assert.equal(demo.stats.broadcastClients, 2, "the stuck one was dropped");
    await stuck.cancel();

    const [leaver] = readers;
    await post(demo, "before leaving");
    assert.ok(
      await leaver.waitFor(() => lastMessageIs(leaver, "before leaving"), 5000),
    );
    const last = leaver.lastId()!;
    await leaver.cancel();
    // Bytes count what the server handed over: let it see the client go.
    while (demo.stats.broadcastClients > 1) await delay(5);
    await post(demo, "while you were away");
    const resumed = await StreamReader.fetch(room, {
      headers: { "last-event-id": last },
    });
    const reset = await StreamReader.fetch(room, {
      headers: { "last-event-id": "nope-1" },
    });
    await post(demo, "last");
    const clients = [readers[1], resumed, reset];
    for (const client of clients) {
      assert.ok(
        await client.waitFor(() => lastMessageIs(client, "last"), 5000),
      );
    }
    const missed = resumed.events.map((event) => JSON.parse(event.data).text);
    assert.deepEqual(missed.slice(0, 2), ["while you were away", undefined]);
    assert.equal(reset.events[0].event, "reset");

    const families = await scrape(url);
    const metric = (name: string) => value(families, name);
    assert.equal(metric("ssekit_demo_tick_streams_opened_total"), 3);
    assert.equal(metric("ssekit_demo_tick_streams_closed_total"), 3);
    assert.equal(metric("ssekit_demo_tick_streams_open"), 0);
    assert.equal(metric("ssekit_demo_ticks_sent_total"), 6);

    const labels = { channel: "room" };
    const channel = (name: string) => value(families, name, labels);
    const joins = 5; // two readers, the stuck one, the resumed, the reset
    const leaves = 2; // the stuck one (dropped) and the leaver
    assert.equal(channel("ssekit_channel_connects_total"), joins);
    assert.equal(channel("ssekit_channel_disconnects_total"), leaves);
    assert.equal(channel("ssekit_channel_clients"), joins - leaves);
    assert.equal(channel("ssekit_channel_dropped_total"), 1);
    // Each message, and each join and leave that the room announces.
    assert.equal(
      channel("ssekit_channel_events_total"),
      messages + 3 + joins + leaves,
    );
    assert.equal(channel("ssekit_channel_resumes_total"), 1);
    assert.equal(channel("ssekit_channel_resets_total"), 1);
    const read = [...readers, resumed, reset].reduce(
      (sum, client) => sum + new TextEncoder().encode(client.text).length,
      0,
    );
    assert.equal(channel("ssekit_channel_bytes_total"), read);
    assert.equal(families.has("ssekit_backplane_state"), false);
    for (const client of clients) await client.cancel();
  }, { keepAlive: 0 });
});

redisTest(
  "/metrics shows the state of the demo's Redis backplane",
  async (redis) => {
    const demo = await startDemoProcess(["--redis", redis.url]);
    try {
      /** Polls /metrics (at most 5 s) until Redis is in `state`. */
      const until = async (state: string) => {
        for (let waited = 0; waited < 5000; waited += 100) {
          const families = await scrape(demo.origin);
          const states = families.get("ssekit_backplane_state")!.metrics;
          assert.equal(states.length, 3);
          const now = states.filter((sample) => sample.value === "1");
          assert.equal(now.length, 1);
          if (now[0].labels!.state === state) return;
          await delay(100);
        }
        throw new Error(`Redis never showed ${state} in /metrics`);
      };
      await until("connected");
      await redis.stop();
      await until("unreachable");
    } finally {
      await demo.stop();
    }
  },
);
