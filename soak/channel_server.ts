// The soak suite's server: one SseChannel (or, for the memory baseline, a
// bare hand-written stream per connection) behind a few routes that let a
// scenario connect clients, send events and read the server's state.
//
//   deno run -A --v8-flags=--expose-gc soak/channel_server.ts
//     [--port 0] [--mode channel|bare] [--history-size N] [--history-bytes B]
//     [--max-buffered B] [--keep-alive MS] [--redis URL --stream NAME]
//     [--tick MS [--tick-size B]]
//
// It prints exactly one line to stdout, `listening on http://127.0.0.1:PORT/`,
// once it listens; everything else (errors included) goes to stderr.
//
//   GET  /events             mode channel: `channel.connect(request)`; mode
//                            bare: a ReadableStream that sends one small
//                            event (`id: K`, K the events sent so far, as the
//                            channel's first line), then waits; no ssekit.
//   POST /send?count=N&size=B
//                            sends N events whose data is the JSON text
//                            {"seq":k,"pad":"xxx…"} of about B bytes, k
//                            counting every event this server ever sent, from
//                            1. Up to 1000 go in one turn of the event loop;
//                            more go 1000 per turn, a 0 ms timer between. On
//                            Redis each is `await channel.publish()`ed in
//                            order (and requests are served one at a time).
//                            Answers {"first": id, "last": id, "seq": k}.
//   POST /send?final         one event with data {"final":true} (mode
//                            channel), which ends soak/_resume_client.ts.
//   GET  /stats              {size, dropped, opened, closed, sent, heapUsed,
//                            rss}; heapUsed after two gc() calls.
//   GET  /memory             Deno.memoryUsage() as it is, without a gc (for
//                            sampling during a run).
//   POST /exit               answers 200, then exits gracefully (below).
//
// `--tick MS` makes the server send one event of `--tick-size` bytes (100 by
// default) every MS milliseconds by itself, through the same path as
// /send: the churn scenario uses it for "an event every millisecond" without
// a second process hammering POST /send.
//
// Exit: POST /exit and SIGTERM both stop the tick timer, close the channel
// (or the bare streams), `await server.shutdown()` and close Redis, and then
// do NOT call Deno.exit: the process must end by itself, which proves that
// neither the library nor this server leaves a timer or a resource behind.
// A process that does not end after /exit is a finding, not a hang to hide.
//
// Nothing here throws out of a listener: the handler catches everything and
// answers 500, and errors go to stderr.
//
// Imported (not run), it exports `ChannelServer`, which starts this file as
// a child process and drives it (stats, send, rss from /proc, exit), and the
// JSON shapes of /stats and /send; the server itself runs only as main.

import { parseArgs } from "node:util";
import { SseChannel } from "../channel.ts";
import { RedisBackplane } from "../redis.ts";
import { delay, Proc, script } from "./_util.ts";

const USAGE =
  "Usage: deno run -A --v8-flags=--expose-gc soak/channel_server.ts [--port 0] " +
  "[--mode channel|bare] [--history-size N] [--history-bytes B] " +
  "[--max-buffered B] [--keep-alive MS] [--redis URL --stream NAME] " +
  "[--tick MS [--tick-size B]]";

/** Events sent in one turn of the event loop by POST /send. */
const PER_TURN = 1000;

// ------------------------------------------------------------------------
// For the scenarios: this server as a child process, driven over HTTP.

/** What GET /stats answers. */
export interface ServerStats {
  /** Clients connected now. */
  size: number;
  /** Clients the channel dropped for falling behind. */
  dropped: number;
  /** Connections to /events opened and closed since the start. */
  opened: number;
  closed: number;
  /** Events sent since the start: the last seq. */
  sent: number;
  /** JS heap in use after two gc() calls, in bytes. */
  heapUsed: number;
  /** Resident set size, in bytes. */
  rss: number;
}

/** What POST /send answers. */
export interface SendResult {
  first?: string;
  last?: string;
  seq: number;
  error?: string;
}

/** A channel_server.ts process, started and driven by a scenario. */
export class ChannelServer {
  readonly proc: Proc;
  /** `http://127.0.0.1:PORT/` */
  readonly origin: string;
  readonly port: number;

  private constructor(proc: Proc, origin: string) {
    this.proc = proc;
    this.origin = origin;
    this.port = Number(new URL(origin).port);
  }

  /** Starts the server with `flags` and waits until it listens. */
  static async start(flags: string[] = []): Promise<ChannelServer> {
    const proc = new Proc(script("channel_server.ts", ...flags));
    try {
      const line = await proc.waitFor(
        /^listening on http:\/\/127\.0\.0\.1:\d+\/$/,
        30_000,
      );
      return new ChannelServer(proc, line.slice("listening on ".length));
    } catch (error) {
      await proc.stop();
      throw error;
    }
  }

  /** One request to the server, bounded in time; the JSON it answers. */
  async #request<T>(method: string, path: string): Promise<T> {
    const response = await fetch(new URL(path, this.origin), {
      method,
      signal: AbortSignal.timeout(60_000),
    });
    const text = await response.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new Error(`${method} ${path}: ${response.status} ${text}`);
    }
  }

  /** GET /stats (two gc() calls first, in the server). */
  stats(): Promise<ServerStats> {
    return this.#request("GET", "stats");
  }

  /** POST /send: `count` events of about `size` bytes. */
  send(count: number, size: number): Promise<SendResult> {
    return this.#request("POST", `send?count=${count}&size=${size}`);
  }

  /**
   * Polls /stats every `everyMs` until `done(stats)` or `ms` pass; the last
   * stats and whether `done` held.
   */
  async until(
    done: (stats: ServerStats) => boolean,
    ms: number,
    everyMs = 200,
  ): Promise<{ stats: ServerStats; ok: boolean }> {
    const deadline = Date.now() + ms;
    for (;;) {
      const stats = await this.stats();
      if (done(stats)) return { stats, ok: true };
      if (Date.now() > deadline) return { stats, ok: false };
      await delay(everyMs);
    }
  }

  /** GET /memory: Deno.memoryUsage() in the server, without a gc. */
  memory(): Promise<Deno.MemoryUsage> {
    return this.#request("GET", "memory");
  }

  /** The server's RSS now, from /proc (Linux), without a gc; in bytes. */
  rss(): number {
    const status = Deno.readTextFileSync(`/proc/${this.proc.child.pid}/status`);
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
    return kib === undefined ? NaN : Number(kib) * 1024;
  }

  /** Whether the process still runs. */
  async running(): Promise<boolean> {
    return await Promise.race([
      this.proc.exited.then(() => false),
      delay(0).then(() => true),
    ]);
  }

  /**
   * POST /exit, then waits up to `ms` for the process to end by itself. The
   * exit code, or undefined if it did not end (it is then killed).
   */
  async exit(ms = 5000): Promise<{ code: number | undefined; ms: number }> {
    const started = performance.now();
    try {
      await (await fetch(new URL("exit", this.origin), {
        method: "POST",
        signal: AbortSignal.timeout(ms),
      })).text();
    } catch {
      // It may have gone already; the wait below tells.
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const status = await Promise.race([
      this.proc.exited,
      new Promise<undefined>((resolve) =>
        timer = setTimeout(() => resolve(undefined), ms)
      ),
    ]);
    clearTimeout(timer);
    const took = performance.now() - started;
    if (status === undefined) {
      await this.proc.stop();
      return { code: undefined, ms: took };
    }
    return { code: status.code, ms: took };
  }

  /** Lines of its output that say "error" or "Uncaught" (any case). */
  problems(): string[] {
    return this.proc.lines.filter((line) => /error|uncaught/i.test(line));
  }
}

/** Runs the server: see the top of this file. */
async function main(): Promise<void> {
  const { values: flags } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "0" },
      mode: { type: "string", default: "channel" },
      "history-size": { type: "string" },
      "history-bytes": { type: "string" },
      "max-buffered": { type: "string" },
      "keep-alive": { type: "string" },
      redis: { type: "string" },
      stream: { type: "string", default: "ssekit-soak" },
      tick: { type: "string" },
      "tick-size": { type: "string", default: "100" },
    },
  });

  /** A flag as a non-negative integer, or undefined when absent. */
  function integer(name: keyof typeof flags): number | undefined {
    const text = flags[name];
    if (text === undefined) return undefined;
    if (typeof text !== "string" || !/^\d+$/.test(text)) {
      console.error(`--${name} must be a non-negative integer\n${USAGE}`);
      Deno.exit(2);
    }
    return Number(text);
  }

  const mode = flags.mode;
  if (mode !== "channel" && mode !== "bare") {
    console.error(`--mode must be channel or bare\n${USAGE}`);
    Deno.exit(2);
  }
  if (flags.redis !== undefined && mode !== "channel") {
    console.error(`--redis needs --mode channel\n${USAGE}`);
    Deno.exit(2);
  }
  const port = integer("port")!;
  const tickMs = integer("tick");
  const tickSize = integer("tick-size")!;

  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) {
    console.error(
      "warning: no gc(); run with --v8-flags=--expose-gc for settled heap figures",
    );
  }

  const ENCODER = new TextEncoder();
  /** Set once the graceful exit has begun. */
  let exiting: Promise<void> | undefined;
  const stats = { opened: 0, closed: 0, sent: 0 };
  /** One function for every client, so that the harness adds no closure. */
  const onClose = () => {
    stats.closed++;
  };

  /** The data of event `seq`: JSON text of about `size` bytes. */
  function payload(seq: number, size: number): string {
    const bare = `{"seq":${seq},"pad":""}`;
    return `{"seq":${seq},"pad":"${
      "x".repeat(Math.max(0, size - bare.length))
    }"}`;
  }

  // --- Redis, when asked for: two connections, no offline queue (commands
  // fail at once while Redis is away, so the backplane sees the outage).
  let redis:
    | {
      client: { destroy(): void };
      reader: { destroy(): void };
      backplane: RedisBackplane;
    }
    | undefined;
  if (flags.redis !== undefined) {
    const { createClient } = await import("redis");
    const url = flags.redis;
    const connect = async () => {
      const client = createClient({ url, disableOfflineQueue: true });
      // node-redis emits "error" for every failed reconnect; an unhandled one
      // would end the process. Reconnecting is its job; we only report.
      client.on("error", (e: Error) => console.error(`redis: ${e.message}`));
      await client.connect();
      return client;
    };
    const [client, reader] = await Promise.all([connect(), connect()]);
    const backplane = new RedisBackplane({
      client,
      reader,
      stream: flags.stream,
      onError: (e) =>
        console.error(`redis backplane: ${(e as Error)?.message}`),
    });
    redis = { client, reader, backplane };
  }

  const channel = mode === "channel"
    ? new SseChannel({
      historySize: integer("history-size"),
      historyBytes: integer("history-bytes"),
      maxBufferedAmount: integer("max-buffered"),
      keepAlive: integer("keep-alive"),
      backplane: redis?.backplane,
    })
    : undefined;
  await channel?.ready;

  // --- bare mode: the baseline for memory. Each connection holds its stream's
  // controller and one small event, and nothing else.
  interface Bare {
    controller: ReadableStreamDefaultController<Uint8Array>;
    ended: boolean;
  }
  const bares = new Set<Bare>();

  /** Ends a bare stream once, counting it as closed. */
  function endBare(bare: Bare, cancelled: boolean): void {
    if (bare.ended) return;
    bare.ended = true;
    bares.delete(bare);
    stats.closed++;
    if (!cancelled) {
      try {
        bare.controller.close();
      } catch {
        // Already cancelled by the server: the client is gone.
      }
    }
  }

  /** GET /events in bare mode: one small event held and sent, then wait. */
  function bareStream(): Response {
    const hello = ENCODER.encode(`id: ${stats.sent}\n\n`);
    let bare!: Bare;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        bare = { controller, ended: false };
        bares.add(bare);
        stats.opened++;
        controller.enqueue(hello);
      },
      cancel() {
        endBare(bare, true);
      },
    });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
      },
    });
  }

  /** Sends one event without Redis; returns its id. */
  function sendNow(size: number): string {
    const seq = ++stats.sent;
    if (channel !== undefined) {
      return channel.send({ data: payload(seq, size) });
    }
    const bytes = ENCODER.encode(`id: ${seq}\ndata: ${payload(seq, size)}\n\n`);
    for (const bare of bares) {
      try {
        bare.controller.enqueue(bytes);
      } catch {
        endBare(bare, true);
      }
    }
    return String(seq);
  }

  /** Publishes one event through Redis; `stats.sent` counts it once ordered. */
  async function publishOne(size: number): Promise<string> {
    const seq = stats.sent + 1;
    const id = await channel!.publish({ data: payload(seq, size) });
    stats.sent = seq;
    return id;
  }

  /** On Redis, sends go one after another, so that seq follows the order. */
  let redisQueue: Promise<unknown> = Promise.resolve();

  interface Sent {
    first: string | undefined;
    last: string | undefined;
    seq: number;
    error?: string;
  }

  /** POST /send's work: `count` events of about `size` bytes. */
  async function sendEvents(count: number, size: number): Promise<Sent> {
    const sent: Sent = { first: undefined, last: undefined, seq: stats.sent };
    if (redis !== undefined) {
      const run = redisQueue.then(async () => {
        for (let i = 0; i < count; i++) {
          const id = await publishOne(size);
          sent.first ??= id;
          sent.last = id;
        }
      });
      redisQueue = run.catch(() => {});
      try {
        await run;
      } catch (error) {
        // A publish the backplane gave up on (or withdrew) never appears, so
        // its seq was not counted: the next event takes it.
        sent.error = String((error as Error)?.message ?? error);
      }
      sent.seq = stats.sent;
      return sent;
    }
    for (let i = 0; i < count; i++) {
      if (i > 0 && i % PER_TURN === 0) {
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      if (channel?.closed) break;
      const id = sendNow(size);
      sent.first ??= id;
      sent.last = id;
    }
    sent.seq = stats.sent;
    return sent;
  }

  // --- --tick: one event every MS ms, skipped while a Redis publish waits.
  let tickTimer: ReturnType<typeof setInterval> | undefined;
  let tickBusy = false;
  if (tickMs !== undefined && tickMs > 0) {
    tickTimer = setInterval(() => {
      try {
        if (channel?.closed) return;
        if (redis === undefined) {
          sendNow(tickSize);
          return;
        }
        if (tickBusy) return;
        tickBusy = true;
        const run = redisQueue.then(() => publishOne(tickSize));
        redisQueue = run.catch(() => {});
        run.catch((e) => console.error(`tick not sent: ${e?.message ?? e}`))
          .finally(() => tickBusy = false);
      } catch (error) {
        console.error(`tick failed: ${(error as Error)?.stack ?? error}`);
      }
    }, tickMs);
  }

  /** A JSON answer. */
  function json(value: unknown, status = 200): Response {
    return new Response(JSON.stringify(value) + "\n", {
      status,
      headers: { "content-type": "application/json" },
    });
  }

  /** A query parameter as a positive integer, or `fallback`. */
  function param(url: URL, name: string, fallback: number): number {
    const value = Number(url.searchParams.get(name) ?? fallback);
    return Number.isSafeInteger(value) && value >= 0 ? value : fallback;
  }

  /** Routes one request (see the top of this file). */
  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const route = `${request.method} ${url.pathname}`;
    switch (route) {
      case "GET /events": {
        if (exiting !== undefined) {
          return new Response("shutting down\n", { status: 503 });
        }
        if (channel === undefined) return bareStream();
        stats.opened++;
        return channel.connect(request, { onClose });
      }
      case "POST /send": {
        await request.body?.cancel();
        if (url.searchParams.has("final") && channel !== undefined) {
          // The end mark that the faults scenario's clients wait for.
          const id = await channel.publish({ data: { final: true } });
          return json({ first: id, last: id, seq: stats.sent });
        }
        const sent = await sendEvents(
          param(url, "count", 1),
          param(url, "size", 100),
        );
        return json(sent, sent.error === undefined ? 200 : 503);
      }
      case "GET /stats": {
        gc?.();
        gc?.();
        const memory = Deno.memoryUsage();
        return json({
          size: channel?.size ?? bares.size,
          dropped: channel?.dropped ?? 0,
          opened: stats.opened,
          closed: stats.closed,
          sent: stats.sent,
          heapUsed: memory.heapUsed,
          rss: memory.rss,
        });
      }
      case "GET /memory": {
        // As it is now, without a gc: for sampling during a run.
        return json(Deno.memoryUsage());
      }
      case "POST /exit": {
        await request.body?.cancel();
        // After this response is on its way; shutdown() waits for it anyway.
        setTimeout(() => exit("POST /exit"), 0);
        return new Response("exiting\n");
      }
    }
    return new Response("not found\n", { status: 404 });
  }

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port,
    onListen({ port }) {
      console.log(`listening on http://127.0.0.1:${port}/`);
    },
    onError(error) {
      console.error(`handler failed: ${(error as Error)?.stack ?? error}`);
      return new Response("internal error\n", { status: 500 });
    },
  }, async (request) => {
    try {
      return await handle(request);
    } catch (error) {
      console.error(`handler failed: ${(error as Error)?.stack ?? error}`);
      return new Response("internal error\n", { status: 500 });
    }
  });

  /**
   * The graceful exit: stops everything this process started and lets it end
   * by itself (no Deno.exit). Runs once.
   */
  function exit(why: string): Promise<void> {
    exiting ??= (async () => {
      console.error(`exiting (${why})`);
      clearInterval(tickTimer);
      Deno.removeSignalListener("SIGTERM", onTerm);
      channel?.close();
      for (const bare of [...bares]) endBare(bare, false);
      await server.shutdown();
      if (redis !== undefined) {
        await redisQueue;
        redis.reader.destroy(); // ends the XREAD BLOCK that waits
        await redis.backplane.finished;
        redis.client.destroy();
      }
    })().catch((e) => console.error(`exit failed: ${e?.stack ?? e}`));
    return exiting;
  }

  /** SIGTERM: the same graceful exit as POST /exit. */
  function onTerm(): void {
    exit("SIGTERM");
  }
  Deno.addSignalListener("SIGTERM", onTerm);
}

if (import.meta.main) await main();
