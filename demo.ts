/**
 * The ssekit demo: two small apps on one server, each the reference for one
 * half of the library.
 *
 * ```sh
 * deno run -A demo.ts [--port 5000] [--host 127.0.0.1] [--log-level info] [--redis URL]
 * curl -N "http://127.0.0.1:5000/sse?count=3&intervalMs=100"
 * curl -d 'hello, every tab' -H 'content-type: text/plain' \
 *   http://127.0.0.1:5000/broadcast/messages
 * ```
 *
 * **The tick stream** (`/`, `_demo_ticks.ts`) streams ticks from the server,
 * one stream per connection, each written by its own `SseWriter`.
 * `GET /sse?count=N&intervalMs=M` sends, on each connection:
 *
 * 1. `event: connected` with `retry: 2000` and data
 *    `{ message, serverTime, count, intervalMs }`;
 * 2. `count` × `event: tick` with `id: i` and data `{ i, total, timestamp }`,
 *    one every `intervalMs`;
 * 3. `event: complete` with data `{ message, total, serverTime }`, and the
 *    stream ends.
 *
 * `count` defaults to {@linkcode DEFAULT_COUNT} and is at most
 * {@linkcode MAX_COUNT}; `intervalMs` defaults to
 * {@linkcode DEFAULT_INTERVAL_MS} and is at most {@linkcode MAX_INTERVAL_MS},
 * so no stream lasts longer than 14 hours. Absent, empty or ≤ 0 means the
 * default; anything else that is not an integer in range is a 400. A client
 * that reconnects with `Last-Event-ID: k` continues at tick `k + 1`.
 *
 * **The broadcast room** (`/broadcast`, `_demo_room.ts`) is one
 * `SseChannel`: a `text/plain` message `POST`ed to `/broadcast/messages`
 * (at most {@linkcode MAX_MESSAGE_LENGTH} characters; 201 with its id)
 * reaches every client of `/broadcast/events` as `event: message` with data
 * `{ text, at }`; each client also hears `clients` (how many this server
 * has) and, with Redis, `backplane` (whether this server reaches it). With
 * `--redis URL` the room spans every demo on that Redis; the demo starts
 * without Redis (it waits up to a second, then serves, and joins once Redis
 * answers), its page shows when this server cannot reach Redis, and a
 * `POST` gets a 503 at once while Redis is known to be away, or after at
 * most {@linkcode PUBLISH_TIMEOUT_MS} otherwise.
 *
 * Both share `/style.css` and `/favicon.svg`. Nothing else is served: other
 * paths get 404, other methods 405. While the demo shuts down, its open
 * streams end cleanly and new streams and messages get a 503.
 *
 * Import it to serve the demo from your own code or tests; running the file
 * parses the flags and serves it.
 *
 * @example Serve the demo on a port of the system's choosing
 * ```ts ignore
 * import { createDemo } from "./demo.ts";
 *
 * const demo = createDemo({ logLevel: "warn" });
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0 }, demo.handler);
 * // ... later: end the open streams, then let the server finish.
 * demo.shutdown();
 * await server.shutdown();
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { SseBackplane, SseOrderedBackplane } from "./mod.ts";
import { RedisBackplane } from "./redis.ts";
import {
  asset,
  createHandler,
  createLogger,
  LOG_LEVELS,
  type LogLevel,
} from "./_demo_http.ts";
import { createTicks } from "./_demo_ticks.ts";
import { createRoom } from "./_demo_room.ts";

export { LOG_LEVELS, type LogLevel };
export {
  DEFAULT_COUNT,
  DEFAULT_INTERVAL_MS,
  MAX_COUNT,
  MAX_INTERVAL_MS,
  RETRY_MS,
} from "./_demo_ticks.ts";
export { MAX_MESSAGE_LENGTH, PUBLISH_TIMEOUT_MS } from "./_demo_room.ts";

/** How long the demo waits for Redis at start before it serves without. */
const REDIS_START_MS = 1000;

/** Options for {@linkcode createDemo}. */
export interface DemoOptions {
  /**
   * The least severe level that is logged.
   *
   * @default {"info"}
   */
  logLevel?: LogLevel;
  /**
   * Shares the broadcast room with other instances, such as a
   * `RedisBackplane`.
   */
  backplane?: SseBackplane | SseOrderedBackplane;
  /**
   * Receives each log line, without a line break, instead of stderr. Tests
   * pass one to read the log.
   *
   * @default {console.error}
   */
  log?: (line: string) => void;
}

/** Counters that tell what the demo's streams are doing. */
export interface DemoStats {
  /** Tick streams opened since the demo was created. */
  readonly opened: number;
  /** Tick streams open now. */
  readonly open: number;
  /** Tick events written, over all streams. */
  readonly ticksSent: number;
  /** Clients of the broadcast page connected to this instance now. */
  readonly broadcastClients: number;
}

/** A demo app, ready to serve; made by {@linkcode createDemo}. */
export interface Demo {
  /**
   * Answers one request: a page or its assets, `/sse`, the broadcast room's
   * `/broadcast/events` and `/broadcast/messages`, or an error status. Hand
   * it to `Deno.serve`, which passes `info` (the client's address, for the
   * log).
   */
  handler(request: Request, info?: Deno.ServeHandlerInfo): Promise<Response>;
  /**
   * Ends every open stream cleanly (each client gets the end of its stream)
   * and answers later `/sse`, `/broadcast/events` and `/broadcast/messages`
   * requests with 503, so that a server's `shutdown()` can finish.
   */
  shutdown(): void;
  /** Live counters, for tests and the log. */
  readonly stats: DemoStats;
}

/**
 * Creates the demo app: the tick stream and the broadcast room on one route
 * table. Nothing listens until its `handler` is served.
 *
 * @example Read the first event of a stream
 * ```ts
 * import { createDemo } from "./demo.ts";
 * import assert from "node:assert/strict";
 *
 * const demo = createDemo({ log: () => {} });
 * const response = await demo.handler(
 *   new Request("http://localhost/sse?count=1&intervalMs=10"),
 * );
 * const text = await response.text();
 * assert.match(text, /^event: connected\nretry: 2000\ndata: /);
 * assert.match(text, /event: complete\n/);
 * ```
 */
export function createDemo(options: DemoOptions = {}): Demo {
  const log = createLogger(options.logLevel ?? "info", options.log);
  const ticks = createTicks(log);
  const room = createRoom(log, options.backplane);
  const handler = createHandler({
    ...ticks.routes,
    ...room.routes,
    "/style.css": { GET: asset("style.css", "text/css; charset=utf-8", log) },
    "/favicon.svg": { GET: asset("favicon.svg", "image/svg+xml", log) },
  }, log);
  return {
    handler,
    shutdown() {
      ticks.shutdown();
      room.shutdown();
    },
    stats: {
      get opened() {
        return ticks.stats.opened;
      },
      get open() {
        return ticks.stats.open;
      },
      get ticksSent() {
        return ticks.stats.ticksSent;
      },
      get broadcastClients() {
        return room.stats.clients;
      },
    },
  };
}

/** How to run the demo, as `--help` prints it. */
export const USAGE: string = `Usage: deno run -A demo.ts [options]

Options:
  --port <n>         port to listen on (default: $PORT or 5000)
  --host <name>      address to listen on (default: $HOST or 127.0.0.1)
  --log-level <lvl>  ${LOG_LEVELS.join(", ")} (default: info)
  --redis <url>      share the broadcast page with every demo using this
                     Redis, e.g. redis://127.0.0.1:6379 (default: none)
  -h, --help         show this help`;

/** The demo's settings, as {@linkcode parseFlags} reads them. */
export interface DemoFlags {
  /** The port to listen on; `0` lets the system choose. */
  port: number;
  /** The address to listen on. */
  host: string;
  /** The least severe level logged. */
  logLevel: LogLevel;
  /** True for `--help` or `-h`. */
  help: boolean;
  /** A Redis URL that instances share the broadcast room through. */
  redis?: string;
}

/**
 * Reads the command line, falling back to `PORT` and `HOST` from `env`, then
 * to `127.0.0.1:5000` and `info`. Throws a `TypeError` naming the bad flag.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./demo.ts";
 * import assert from "node:assert/strict";
 *
 * const flags = parseFlags(["--port", "8080"], () => undefined);
 * assert.equal(flags.port, 8080);
 * assert.equal(flags.host, "127.0.0.1");
 * ```
 */
export function parseFlags(
  args: string[],
  env: (name: string) => string | undefined,
): DemoFlags {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      "log-level": { type: "string" },
      redis: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const portText = values.port ?? env("PORT") ?? "5000";
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    throw new TypeError(`Invalid port: ${JSON.stringify(portText)}`);
  }
  const logLevel = values["log-level"] ?? "info";
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new TypeError(`Invalid log level: ${JSON.stringify(logLevel)}`);
  }
  const { redis } = values;
  if (redis !== undefined && !/^rediss?:\/\/[^\s]+$/.test(redis)) {
    throw new TypeError(`Invalid Redis URL: ${JSON.stringify(redis)}`);
  }
  return {
    port,
    host: values.host ?? env("HOST") ?? "127.0.0.1",
    logLevel: logLevel as LogLevel,
    help: values.help ?? false,
    redis,
  };
}

if (import.meta.main) {
  let flags: DemoFlags;
  try {
    flags = parseFlags(Deno.args, (name) => Deno.env.get(name));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (flags.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const { port, host, logLevel } = flags;
  const log = createLogger(logLevel);
  let backplane: RedisBackplane | undefined;
  if (flags.redis !== undefined) {
    // Only the demo needs a Redis client; the library takes the one you have.
    const { createClient } = await import("redis");
    const url = flags.redis;
    // Commands fail at once while a client is offline (no queue), so the
    // backplane sees an outage. Redis gets a moment to answer at start;
    // after that the demo serves its tick stream without it, and the
    // broadcast room joins once Redis is there.
    const connect = () => {
      const client = createClient({ url, disableOfflineQueue: true })
        .on("error", (error: Error) => log.debug(`redis: ${error.message}`));
      const connected = client.connect().then(
        () => {},
        (error: Error) =>
          log.error(`redis: cannot connect to ${url}: ${error.message}`),
      );
      return { client, connected };
    };
    const [client, reader] = [connect(), connect()];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ready = await Promise.race([
      Promise.all([client.connected, reader.connected]).then(() => true),
      new Promise<false>((resolve) =>
        timer = setTimeout(() => resolve(false), REDIS_START_MS)
      ),
    ]);
    clearTimeout(timer);
    let lastError = "";
    backplane = new RedisBackplane({
      client: client.client,
      reader: reader.client,
      stream: "ssekit-demo-broadcast",
      onError: (error) => lastError = (error as Error)?.message ?? `${error}`,
    });
    const redis = backplane;
    if (!ready) log.warn(`broadcast: waiting for Redis at ${url}`);
    redis.addEventListener("statechange", () => {
      if (redis.state === "connected") {
        log.info(`broadcast shared through Redis at ${url}`);
      } else {
        log.warn(`broadcast: Redis at ${url} is unreachable: ${lastError}`);
      }
    });
  }
  const demo = createDemo({ logLevel, backplane });
  const server = Deno.serve({
    hostname: host,
    port,
    onListen({ hostname, port }) {
      const origin = `http://${
        hostname.includes(":") ? `[${hostname}]` : hostname
      }:${port}`;
      console.log(`ssekit demo
  page:      ${origin}/
  stream:    curl -N "${origin}/sse?count=3&intervalMs=100"
  broadcast: ${origin}/broadcast
Press Ctrl-C to stop.`);
    },
  }, demo.handler);

  let stopping = false;
  const stop = () => {
    if (stopping) Deno.exit(130); // a second Ctrl-C: do not wait
    stopping = true;
    log.info("shutting down (Ctrl-C again to force)");
    demo.shutdown();
    server.shutdown().then(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGINT", stop);
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", stop);
}
