// Fan-out across two instances through Redis against one instance alone:
// M events published by one channel, C clients split over the instances,
// read in process; deliveries/s until every client has every event. Through
// Redis, every client (the sender's too) gets each event once it is in the
// stream. Starts its own redis-server on a free loopback port.
//
//   deno run -A bench/redis.ts [--quick | --tiny]
//
// Prints a JSON line, then the markdown row for bench/README.md.

import { createClient } from "redis";
import { SseChannel } from "../mod.ts";
import { RedisBackplane } from "../redis.ts";
import { median } from "./_stats.ts";

const SIZES = {
  full: { events: 200, clients: 1000, rounds: 5 },
  quick: { events: 100, clients: 200, rounds: 3 },
  tiny: { events: 10, clients: 4, rounds: 1 },
};
const size = Deno.args.includes("--tiny")
  ? "tiny"
  : Deno.args.includes("--quick")
  ? "quick"
  : "full";
const { events, clients, rounds } = SIZES[size];

/** Reads a client's stream until it has seen `count` events. */
async function receive(body: ReadableStream<Uint8Array>, count: number) {
  const decoder = new TextDecoder();
  let seen = 0;
  for await (const chunk of body) {
    seen += decoder.decode(chunk, { stream: true }).split("\ndata: ").length -
      1;
    if (seen >= count) return;
  }
  throw new Error(`A client got ${seen} of ${count} events`);
}

async function startRedis() {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const process = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--save", "", "--appendonly", "no"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0;; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch (error) {
      if (i === 200) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      process.kill("SIGKILL");
      await process.status;
    },
  };
}

/** One round: the channels, their clients split evenly, the events sent. */
async function round(channels: SseChannel[]): Promise<number> {
  const bodies = Array.from(
    { length: clients },
    (_, i) =>
      channels[i % channels.length].connect(new Request("http://x/")).body!,
  );
  const received = bodies.map((body) => receive(body, events));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const start = performance.now();
  const published = [];
  for (let i = 1; i <= events; i++) {
    published.push(channels[0].publish({ event: "tick", data: { i } }));
  }
  await Promise.all([...published, ...received]);
  const ms = performance.now() - start;
  for (const body of bodies) await body.cancel();
  return (events * clients) / (ms / 1000);
}

const redis = await startRedis();
const alone: number[] = [];
const shared: number[] = [];
try {
  for (let r = 0; r <= rounds; r++) { // round 0 warms up
    const one = new SseChannel({ keepAlive: 0 });
    const a = await round([one]);
    one.close();

    const connections = await Promise.all(
      Array.from(
        { length: 4 },
        () => createClient({ url: redis.url }).connect(),
      ),
    );
    const backplanes = [0, 1].map((n) =>
      new RedisBackplane({
        client: connections[2 * n],
        reader: connections[2 * n + 1],
        stream: `bench-${r}`,
        blockMs: 100,
      })
    );
    const two = backplanes.map((backplane) =>
      new SseChannel({ backplane, keepAlive: 0 })
    );
    await new Promise((resolve) => setTimeout(resolve, 150)); // readers ready
    const b = await round(two);
    for (const channel of two) channel.close();
    for (const connection of connections) connection.destroy();
    await Promise.all(backplanes.map((backplane) => backplane.finished));
    if (r > 0) {
      alone.push(a);
      shared.push(b);
    }
  }
} finally {
  await redis.stop();
}

const result = {
  size,
  events,
  clients,
  aloneDeliveriesPerSecond: Math.round(median(alone)),
  redisDeliveriesPerSecond: Math.round(median(shared)),
};
console.log(JSON.stringify(result));
const format = (n: number) => n.toLocaleString("en-US");
console.log(
  `| fan-out, ${events} events to ${format(clients)} clients | ` +
    `${format(result.aloneDeliveriesPerSecond)} | ` +
    `${format(result.redisDeliveriesPerSecond)} | ` +
    `${
      (result.redisDeliveriesPerSecond / result.aloneDeliveriesPerSecond)
        .toFixed(2)
    }× |`,
);
