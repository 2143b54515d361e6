// One scenario for one implementation, in a process of its own:
//
//   deno run -A --v8-flags=--expose-gc bench/scenario.ts \
//     --scenario=push --impl=ssekit [--size=full|quick|tiny]
//
// Prints one JSON object on its last line of stdout. `run.ts` runs them all.
// `--impl=a,b` runs several in turn, for quick checks, but for
// latency-loopback, which takes their samples in turn on one server (and
// prints a line for each).

import { parseArgs } from "node:util";
import { median, percentile } from "./_stats.ts";
import { type Impl, IMPLS, type Sink, tick, tickBytes } from "./impls.ts";

export const SCENARIOS = [
  "stream",
  "push",
  "loopback-1",
  "loopback-50",
  "fanout",
  "topics",
  "idle",
  "latency",
  "latency-loopback",
] as const;
export type Scenario = typeof SCENARIOS[number];
export type Size = "full" | "quick" | "tiny";

/** Sizes per run size: events per round, rounds after one warm-up, … */
export const SIZES: Record<Size, {
  events: number;
  rounds: number;
  warmUp: boolean;
  fanout: { events: number; clients: number };
  topics: { sends: number; clients: number[] };
  idle: number[];
  samples: number;
}> = {
  full: {
    events: 200_000,
    rounds: 5,
    warmUp: true,
    fanout: { events: 100, clients: 1000 },
    topics: { sends: 2000, clients: [1000, 5000, 20_000] },
    idle: [2000, 10_000],
    samples: 3000,
  },
  quick: {
    events: 50_000,
    rounds: 3,
    warmUp: true,
    fanout: { events: 100, clients: 1000 },
    topics: { sends: 1000, clients: [1000, 5000, 20_000] },
    idle: [2000],
    samples: 200,
  },
  tiny: {
    events: 500,
    rounds: 1,
    warmUp: false,
    fanout: { events: 5, clients: 20 },
    topics: { sends: 20, clients: [10, 50] },
    idle: [10],
    samples: 5,
  },
};

/** Connections opened (and kept) before the idle measurement starts. */
const IDLE_WARM_UP = 20;
const CLIENT = new URL("./client.ts", import.meta.url).pathname;
const URL_ = "http://127.0.0.1/";

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

/** Reads a body to its end, counting bytes and chunks. */
async function drain(
  body: ReadableStream<Uint8Array>,
): Promise<{ bytes: number; chunks: number }> {
  const reader = body.getReader();
  let bytes = 0, chunks = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { bytes, chunks };
    bytes += value.byteLength;
    chunks++;
  }
}

export interface Round {
  ms: number;
  bytes: number;
  chunks: number;
}

declare const gc:
  | ((options?: { type: "major"; flavor: "last-resort" }) => void)
  | undefined;

/**
 * Runs the warm-up and the rounds; returns the median round and them all.
 * With `budgetMs`, rounds go on after the first `times` × the size's count
 * until that much time has passed (at most 20 times as many), so that an
 * implementation whose rounds take a few milliseconds is measured with its
 * code optimized, as a server that runs for hours runs it, and one whose
 * rounds take a second does not make the run last minutes.
 */
async function rounds(
  size: Size,
  run: () => Promise<Round>,
  times = 1,
  budgetMs = 0,
) {
  const { warmUp } = SIZES[size];
  const rounds = SIZES[size].rounds * times;
  if (warmUp) await run();
  const all: Round[] = [];
  const start = performance.now();
  while (
    all.length < rounds ||
    (all.length < rounds * 20 && performance.now() - start < budgetMs)
  ) {
    gc?.(); // so that no round pays for the garbage of the one before
    all.push(await run());
  }
  const ms = median(all.map((r) => r.ms));
  return {
    ms,
    roundsMs: all.map((r) => r.ms),
    bytes: all[0].bytes,
    chunks: median(all.map((r) => r.chunks)),
  };
}

function throughput(count: number, result: { ms: number }) {
  return {
    count,
    perSecond: count / (result.ms / 1000),
    nsPer: result.ms * 1e6 / count,
  };
}

/**
 * One round in process: N events written (each awaited, or not), the body
 * read by a reader loop.
 */
export async function inProcessRound(
  impl: Impl,
  size: Size,
  awaitEach: boolean,
): Promise<Round> {
  const n = SIZES[size].events;
  const expected = tickBytes(1, n);
  const start = performance.now();
  const sink = impl.open(new Request(URL_));
  const reading = drain(sink.response.body!);
  if (awaitEach) {
    for (let i = 1; i <= n; i++) await sink.write(tick(i));
  } else {
    let last: Promise<void> | undefined;
    for (let i = 1; i <= n; i++) last = sink.write(tick(i));
    await last;
  }
  sink.close();
  const { bytes, chunks } = await reading;
  check(bytes === expected, `Got ${bytes} bytes, expected ${expected}`);
  return { ms: performance.now() - start, bytes, chunks };
}

/** In process: N events written, the body read by a reader loop. */
async function inProcess(impl: Impl, size: Size, awaitEach: boolean) {
  const result = await rounds(
    size,
    () => inProcessRound(impl, size, awaitEach),
  );
  return { ...result, ...throughput(SIZES[size].events, result) };
}

/**
 * One fan-out round: C clients connect and wait, M events are sent back to
 * back, and the time until every client has read them all.
 */
export async function fanoutRound(impl: Impl, size: Size): Promise<Round> {
  const { events, clients } = SIZES[size].fanout;
  const expected = tickBytes(1, events);
  const group = impl.fanout();
  const readers = Array.from(
    { length: clients },
    () => drain(group.connect(new Request(URL_)).body!),
  );
  // Every client connected and waits for events, as served ones would.
  await new Promise((resolve) => setTimeout(resolve, 0));
  const start = performance.now();
  for (let i = 1; i <= events; i++) group.send(tick(i));
  group.close();
  const results = await Promise.all(readers);
  const ms = performance.now() - start;
  for (const { bytes } of results) {
    // A channel may greet a new client with its position before the
    // events, and number them itself: `id: k2f9x1-12` is 8 bytes longer
    // than the tick's own `id: 12`, at most.
    check(
      bytes >= expected && bytes <= expected + 64 + events * 8,
      `Got ${bytes} bytes, expected ${expected}`,
    );
  }
  return {
    ms,
    bytes: expected,
    chunks: results.reduce((sum, r) => sum + r.chunks, 0) / clients,
  };
}

/** Fan-out: M events sent back to back to C clients read in process. */
async function fanout(impl: Impl, size: Size) {
  const { events, clients } = SIZES[size].fanout;
  // Short rounds: three times as many, and more until 2 s have passed.
  const budget = size === "tiny" ? 0 : 2000;
  const result = await rounds(size, () => fanoutRound(impl, size), 3, budget);
  return { ...result, clients, ...throughput(events * clients, result) };
}

/** Resolves in the next turn of the event loop (a task, not a timer). */
function nextTurn(port: MessagePort, other: MessagePort): Promise<void> {
  return new Promise((resolve) => {
    port.onmessage = () => resolve();
    other.postMessage(null);
  });
}

/**
 * Topics: C clients, each on a topic of its own (per-user notifications),
 * and one event to one topic per turn of the event loop. What a send costs
 * for each C (the call and the microtask that hands the event over, not
 * the rest of the turn): flat if finding a topic's clients does not walk
 * them all.
 */
async function topics(impl: Impl, size: Size) {
  const { sends, clients } = SIZES[size].topics;
  const { rounds, warmUp } = SIZES[size];
  const stages = [];
  for (const count of clients) {
    const samples: number[] = [];
    for (let round = warmUp ? -1 : 0; round < rounds; round++) {
      gc?.();
      const times = await topicRound(impl, count, sends);
      if (round >= 0) samples.push(...times);
    }
    stages.push({
      clients: count,
      sends: samples.length,
      medianUs: median(samples) * 1000,
      meanUs: samples.reduce((sum, ms) => sum + ms, 0) / samples.length * 1000,
      p99Us: percentile(samples, 0.99) * 1000,
    });
  }
  return { stages };
}

/** One round of `topics`: what each send took, in milliseconds. */
async function topicRound(
  impl: Impl,
  count: number,
  sends: number,
): Promise<number[]> {
  const group = impl.fanout();
  const readers = Array.from(
    { length: count },
    (_, i) => drain(group.connect(new Request(URL_), `user-${i}`).body!),
  );
  const { port1, port2 } = new MessageChannel();
  await nextTurn(port1, port2); // every client connected and waiting
  const times: number[] = [];
  let expected = 0;
  for (let i = 1; i <= sends; i++) {
    const start = performance.now();
    // Spread over the clients, so that each topic is sent to in turn.
    group.send(tick(i), `user-${(i * 7919) % count}`);
    await null; // a channel hands its events over in a microtask
    times.push(performance.now() - start);
    expected += tickBytes(i, i);
    await nextTurn(port1, port2);
  }
  port1.close();
  group.close();
  const results = await Promise.all(readers);
  const bytes = results.reduce((sum, r) => sum + r.bytes, 0);
  // A channel greets each client and adds ids: a little more, not less.
  check(
    bytes >= expected && bytes <= expected + count * 64 + sends * 64,
    `Got ${bytes} bytes for ${count} clients, expected ${expected}`,
  );
  return times;
}

type Handler = (request: Request, path: string) => Response;

async function withServer<T>(
  handler: Handler,
  fn: (port: number) => Promise<T>,
): Promise<T> {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => handler(request, new URL(request.url).pathname),
  );
  try {
    return await fn(server.addr.port);
  } finally {
    await server.shutdown();
  }
}

/** Spawns the client; yields its JSON lines; `send` writes to its stdin. */
function client(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLIENT, ...args],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const writer = child.stdin.getWriter();
  let buffered = "";
  return {
    async next(): Promise<Record<string, unknown>> {
      while (!buffered.includes("\n")) {
        const { value, done } = await lines.read();
        if (done) throw new Error("The client ended early");
        buffered += value;
      }
      const line = buffered.slice(0, buffered.indexOf("\n"));
      buffered = buffered.slice(line.length + 1);
      return JSON.parse(line);
    },
    send(line: string): Promise<void> {
      return writer.write(new TextEncoder().encode(line + "\n"));
    },
    async end(): Promise<void> {
      await writer.close();
      while (!(await lines.read()).done);
      const status = await child.status;
      check(status.success, `The client failed with code ${status.code}`);
    },
  };
}

/** Loopback: C connections, N events in all, pushed with `await write()`. */
async function loopback(impl: Impl, size: Size, conns: number) {
  const perConn = Math.ceil(SIZES[size].events / conns);
  const expected = tickBytes(1, perConn);
  const { rounds, warmUp } = SIZES[size];
  return await withServer((request) => {
    const sink = impl.open(request);
    (async () => {
      for (let i = 1; i <= perConn; i++) await sink.write(tick(i));
      sink.close();
    })().catch(() => {});
    return sink.response;
  }, async (port) => {
    const reader = client([
      "stream",
      `--port=${port}`,
      `--conns=${conns}`,
      `--rounds=${rounds + (warmUp ? 1 : 0)}`,
    ]);
    const all: Round[] = [];
    for (let i = 0; i < rounds + (warmUp ? 1 : 0); i++) {
      const round = await reader.next() as {
        ms: number;
        status: number[];
        bodyBytes: number[];
        chunks: number[];
      };
      for (const [j, bytes] of round.bodyBytes.entries()) {
        check(round.status[j] === 200, `Got status ${round.status[j]}`);
        check(bytes === expected, `Got ${bytes} bytes, expected ${expected}`);
      }
      if (warmUp && i === 0) continue;
      all.push({
        ms: round.ms,
        bytes: expected * conns,
        chunks: round.chunks.reduce((a, b) => a + b, 0) / conns,
      });
    }
    await reader.end();
    const ms = median(all.map((r) => r.ms));
    return {
      ms,
      roundsMs: all.map((r) => r.ms),
      bytes: expected * conns,
      chunks: median(all.map((r) => r.chunks)),
      connections: conns,
      ...throughput(perConn * conns, { ms }),
    };
  });
}

async function settledMemory(): Promise<Deno.MemoryUsage> {
  await new Promise((resolve) => setTimeout(resolve, 100));
  // A last-resort GC also gives back the heap V8 keeps for growth, so that
  // RSS shows what the connections hold, not the GC's headroom.
  for (let i = 0; i < 3; i++) gc?.({ type: "major", flavor: "last-resort" });
  return Deno.memoryUsage();
}

/** Idle: connections that got one event, then nothing; memory per each. */
async function idle(impl: Impl, size: Size) {
  check(typeof gc === "function", "Run with --v8-flags=--expose-gc");
  const sinks = new Set<Sink>();
  const stages = [
    IDLE_WARM_UP,
    ...SIZES[size].idle.map((n) => n + IDLE_WARM_UP),
  ];
  return await withServer((request) => {
    const sink = impl.open(request);
    sink.write(tick(0)).catch(() => {});
    sinks.add(sink);
    request.signal.addEventListener("abort", () => sinks.delete(sink), {
      once: true,
    });
    return sink.response;
  }, async (port) => {
    const reader = client(["idle", `--port=${port}`, `--stages=${stages}`]);
    let base: Deno.MemoryUsage | undefined;
    const results = [];
    for (const target of stages) {
      const { ready } = await reader.next();
      check(ready === target, `Client opened ${ready}, expected ${target}`);
      const memory = await settledMemory();
      check(sinks.size === target, `Server holds ${sinks.size} streams`);
      if (base === undefined) {
        base = memory;
      } else {
        const n = target - IDLE_WARM_UP;
        results.push({
          connections: n,
          heapPerConnection: (memory.heapUsed - base.heapUsed) / n,
          rssPerConnection: (memory.rss - base.rss) / n,
          heapTotalPerConnection: (memory.heapTotal - base.heapTotal) / n,
          externalPerConnection: (memory.external - base.external) / n,
        });
      }
      await reader.send("next");
    }
    await reader.next(); // {"closed": n}
    await reader.end();
    const deadline = Date.now() + 10_000;
    while (sinks.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    check(sinks.size === 0, `${sinks.size} streams left after the clients`);
    return { stages: results };
  });
}

function summarize(samplesMs: number[], sameTurn?: number) {
  return {
    samples: samplesMs.length,
    medianUs: median(samplesMs) * 1000,
    p99Us: percentile(samplesMs, 0.99) * 1000,
    ...(sameTurn === undefined ? {} : { sameTurn }),
  };
}

/**
 * Latency in process: from `write()` to the reader holding the bytes, for a
 * client that waits; and whether they came before a timer of 0 ms fired,
 * that is, within the same turn of the event loop.
 */
async function latency(impl: Impl, size: Size) {
  check(impl.label !== IMPLS.coalesced.label, "Coalescing holds events back");
  const sink = impl.open(new Request(URL_));
  const reader = sink.response.body!.getReader();
  let arrived: ((at: number) => void) | undefined;
  const reading = (async () => {
    for (;;) {
      const { done } = await reader.read();
      if (done) return;
      arrived?.(performance.now());
    }
  })();
  const samples: number[] = [];
  let sameTurn = 0;
  const count = SIZES[size].samples;
  const warmUp = Math.ceil(count / 5);
  for (let i = 0; i < warmUp + count; i++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    let timerFired = false;
    const timer = setTimeout(() => timerFired = true, 0);
    const got = new Promise<number>((resolve) => arrived = resolve);
    const start = performance.now();
    sink.write(tick(i));
    const end = await got;
    clearTimeout(timer);
    if (i < warmUp) continue; // the first read also started the stream
    samples.push(end - start);
    if (!timerFired) sameTurn++;
  }
  sink.close();
  await reading;
  return summarize(samples, sameTurn / count);
}

/**
 * Latency over loopback: a ping request triggers an event on an SSE stream.
 * Every implementation in `impls` has its stream open at once, on one
 * server, and the client takes their samples in turn: each one's median and
 * p99 then come from the same stretch of the machine's time, which on a
 * shared machine moves more from one process to the next than any of them
 * differ.
 */
async function latencyLoopback(impls: Impl[], size: Size) {
  for (const impl of impls) {
    check(impl.label !== IMPLS.coalesced.label, "Coalescing holds events back");
  }
  const current: (Sink | undefined)[] = impls.map(() => undefined);
  const ticks = impls.map(() => 0);
  return await withServer((request, path) => {
    const [, kind, index] = path.split("/");
    const k = Number(index);
    if (kind === "ping") {
      current[k]?.write(tick(++ticks[k])).catch(() => {});
      return new Response(null, { status: 204 });
    }
    current[k] = impls[k].open(request);
    current[k].write(tick(0)).catch(() => {});
    return current[k].response;
  }, async (port) => {
    const reader = client([
      "latency",
      `--port=${port}`,
      `--streams=${impls.length}`,
      `--count=${SIZES[size].samples}`,
      `--warm-up=${Math.ceil(SIZES[size].samples / 5)}`,
    ]);
    const { samples } = await reader.next() as { samples: number[][] };
    await reader.end();
    for (const stream of samples) {
      check(stream.length === SIZES[size].samples, "Missing samples");
    }
    for (const sink of current) sink?.close();
    return samples.map((stream) => summarize(stream));
  });
}

export async function runScenario(
  scenario: Scenario,
  impl: Impl,
  size: Size,
): Promise<Record<string, unknown>> {
  switch (scenario) {
    case "stream":
      return await inProcess(impl, size, false);
    case "push":
      return await inProcess(impl, size, true);
    case "loopback-1":
      return await loopback(impl, size, 1);
    case "loopback-50":
      return await loopback(impl, size, 50);
    case "fanout":
      return await fanout(impl, size);
    case "topics":
      return await topics(impl, size);
    case "idle":
      return await idle(impl, size);
    case "latency":
      return await latency(impl, size);
    case "latency-loopback":
      return (await latencyLoopback([impl], size))[0];
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      scenario: { type: "string" },
      impl: { type: "string" },
      size: { type: "string", default: "full" },
    },
  });
  const scenario = values.scenario as Scenario;
  check(SCENARIOS.includes(scenario), `Unknown scenario ${scenario}`);
  check(values.size! in SIZES, `Unknown size ${values.size}`);
  const impls = (values.impl ?? "").split(",").map((name) => {
    check(IMPLS[name] !== undefined, `Unknown impl ${name}`);
    return { name, impl: IMPLS[name] };
  });
  if (scenario === "latency-loopback") {
    // Paired: their samples taken in turn, as latencyLoopback says.
    const results = await latencyLoopback(
      impls.map(({ impl }) => impl),
      values.size as Size,
    );
    impls.forEach(({ name }, k) => {
      console.log(JSON.stringify({ scenario, impl: name, ...results[k] }));
    });
  } else {
    // Several impls (`--impl=a,b`) share this process: for quick checks only.
    for (const { name, impl } of impls) {
      const result = await runScenario(scenario, impl, values.size as Size);
      console.log(JSON.stringify({ scenario, impl: name, ...result }));
    }
  }
}
