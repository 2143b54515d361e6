/**
 * The ssekit demo: two small apps on one server, each the reference for one
 * half of the library.
 *
 * ```sh
 * deno run -A demo.ts [--port 5000] [--host 127.0.0.1] [--log-level info] \
 *   [--redis URL] [--keep-alive MS] [--cert FILE --key FILE]
 * curl -N "http://127.0.0.1:5000/sse?count=3&intervalMs=100"
 * curl -d 'hello, every tab' -H 'content-type: text/plain' \
 *   http://127.0.0.1:5000/broadcast/messages
 * curl http://127.0.0.1:5000/metrics
 * ```
 *
 * **The tick stream** (`/`, `demo/ticks.ts`) streams ticks from the server,
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
 * **The broadcast room** (`/broadcast`, `demo/room.ts`) is one
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
 * Both share `/style.css` and `/favicon.svg`, and `/metrics` serves their
 * counters in the Prometheus text format. `HEAD` is answered wherever `GET`
 * is, with the same headers and no body (no stream starts). A query
 * parameter given twice is a 400. Nothing else is served: other paths get
 * 404, other methods 405. While the demo shuts down, its open streams end
 * cleanly and new streams and messages get a 503.
 *
 * `--keep-alive MS` sets the keep-alive period of every stream (match it to
 * the idle timeout of a proxy in front); `--cert FILE --key FILE` serve
 * HTTPS, with HTTP/2 and HTTP/1.1 offered (ALPN).
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

import type { SseBackplane, SseOrderedBackplane } from "./mod.ts";
import { RedisBackplane } from "./redis.ts";
import {
  asset,
  createHandler,
  createLogger,
  LOG_LEVELS,
  type LogLevel,
} from "./demo/http.ts";
import { METRICS_TYPE, prometheusText } from "./demo/metrics.ts";
import { createTicks } from "./demo/ticks.ts";
import { createRoom } from "./demo/room.ts";
import { type DemoFlags, parseFlags, USAGE } from "./demo/flags.ts";

export { LOG_LEVELS, type LogLevel };
export { type DemoFlags, parseFlags, USAGE } from "./demo/flags.ts";
export {
  DEFAULT_COUNT,
  DEFAULT_INTERVAL_MS,
  MAX_COUNT,
  MAX_INTERVAL_MS,
  RETRY_MS,
} from "./demo/ticks.ts";
export { MAX_MESSAGE_LENGTH, PUBLISH_TIMEOUT_MS } from "./demo/room.ts";

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
   * Milliseconds of silence after which every stream (the tick streams and
   * the room) sends a keep-alive comment; `0` turns it off. Keep it below
   * the idle timeout of any proxy in front.
   *
   * @default {5000}
   */
  keepAlive?: number;
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
  /** Tick streams that ended, for whatever reason. */
  readonly closed: number;
  /** Tick events written, over all streams. */
  readonly ticksSent: number;
  /** Clients of the broadcast page connected to this instance now. */
  readonly broadcastClients: number;
}

/** A demo app, ready to serve; made by {@linkcode createDemo}. */
export interface Demo {
  /**
   * Answers one request: a page or its assets, `/sse`, the broadcast room's
   * `/broadcast/events` and `/broadcast/messages`, `/metrics`, or an error
   * status. Hand it to `Deno.serve`, which passes `info` (the client's
   * address, for the log).
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
  const { backplane, keepAlive } = options;
  const room = createRoom(log, { backplane, keepAlive }); // checks keepAlive
  const ticks = createTicks(log, { keepAlive });
  const metrics = () =>
    new Response(prometheusText([...ticks.metrics(), ...room.metrics()]), {
      headers: { "content-type": METRICS_TYPE, "cache-control": "no-store" },
    });
  const handler = createHandler({
    ...ticks.routes,
    ...room.routes,
    "/style.css": { GET: asset("style.css", "text/css; charset=utf-8", log) },
    "/favicon.svg": { GET: asset("favicon.svg", "image/svg+xml", log) },
    "/metrics": { GET: metrics },
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
      get closed() {
        return ticks.stats.closed;
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

/** The PEM texts of the files that `--cert` and `--key` name. */
async function readTls(
  files: { cert: string; key: string },
): Promise<{ cert: string; key: string }> {
  const read = (flag: string, file: string) =>
    Deno.readTextFile(file).catch((error: Error) => {
      throw new TypeError(
        `Cannot read ${flag} ${JSON.stringify(file)}: ${error.message}`,
      );
    });
  return {
    cert: await read("--cert", files.cert),
    key: await read("--key", files.key),
  };
}

if (import.meta.main) {
  let flags: DemoFlags;
  let tls: { cert: string; key: string } | undefined;
  try {
    flags = parseFlags(Deno.args, (name) => Deno.env.get(name));
    if (flags.tls && !flags.help) tls = await readTls(flags.tls);
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (flags.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const { port, host, logLevel, keepAlive } = flags;
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
  const demo = createDemo({ logLevel, backplane, keepAlive });
  const onListen = ({ hostname, port }: Deno.NetAddr) => {
    const origin = `${tls ? "https" : "http"}://${
      hostname.includes(":") ? `[${hostname}]` : hostname
    }:${port}`;
    console.log(`ssekit demo
  page:      ${origin}/
  stream:    curl -N "${origin}/sse?count=3&intervalMs=100"
  broadcast: ${origin}/broadcast
  metrics:   ${origin}/metrics
  protocols: ${
      tls
        ? "HTTP/2 and HTTP/1.1, over TLS"
        : "HTTP/1.1 (a browser opens 6 streams per origin; --cert and --key for HTTP/2)"
    }
Press Ctrl-C to stop.`);
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve(
      { hostname: host, port, onListen, ...tls },
      demo.handler,
    );
  } catch (error) {
    // A bad certificate or key, or an address that is taken.
    console.error(`Cannot serve: ${(error as Error).message}`);
    Deno.exit(2);
  }

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
