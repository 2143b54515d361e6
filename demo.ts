/**
 * The ssekit demo: a page that streams ticks from the server, one stream per
 * connection, and the reference for how to use {@linkcode SseWriter}.
 *
 * ```sh
 * deno run -A demo.ts [--port 5000] [--host 127.0.0.1] [--log-level info]
 * curl -N "http://127.0.0.1:5000/sse?count=3&intervalMs=100"
 * ```
 *
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
 * `/broadcast` is a page where a message `POST`ed to `/broadcast/messages`
 * reaches every open tab, through one {@linkcode SseChannel}. With
 * `--redis URL` it spans every demo on that Redis; the demo starts without
 * Redis (it waits up to a second, then serves, and joins once Redis answers),
 * its page shows when this server cannot reach Redis, and a `POST` gets a 503
 * at once while Redis is known to be away, or after at most
 * {@linkcode PUBLISH_TIMEOUT_MS} otherwise.
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
import {
  lastEventId,
  type SseBackplane,
  SseChannel,
  SseClosedError,
  type SseEvent,
  type SseOrderedBackplane,
  SseWriter,
} from "./mod.ts";
import { RedisBackplane } from "./redis.ts";

/** How long the demo waits for Redis at start before it serves without. */
const REDIS_START_MS = 1000;

/** Ticks per stream when `count` is absent or ≤ 0. */
export const DEFAULT_COUNT = 30;
/** The largest `count` accepted. */
export const MAX_COUNT = 10_000;
/** Milliseconds between ticks when `intervalMs` is absent or ≤ 0. */
export const DEFAULT_INTERVAL_MS = 1000;
/** The largest `intervalMs` accepted: with `MAX_COUNT`, under 14 hours. */
export const MAX_INTERVAL_MS = 5000;
/** The reconnection delay sent to clients with `connected`, in milliseconds. */
export const RETRY_MS = 2000;
/** The longest broadcast message accepted, in characters. */
export const MAX_MESSAGE_LENGTH = 500;
/**
 * How long a broadcast `POST` waits for the backplane to take its message,
 * in milliseconds, before it is answered with 503.
 */
export const PUBLISH_TIMEOUT_MS = 5000;

/** Log levels, most severe first. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
/** One of {@linkcode LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

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
  /** Streams opened since the demo was created. */
  readonly opened: number;
  /** Streams open now. */
  readonly open: number;
  /** Tick events written, over all streams. */
  readonly ticksSent: number;
  /** Clients of the broadcast page connected to this instance now. */
  readonly broadcastClients: number;
}

/** A demo app, ready to serve; made by {@linkcode createDemo}. */
export interface Demo {
  /**
   * Answers one request: the page and its assets, `/sse`, or an error
   * status. Hand it to `Deno.serve`, which passes `info` (the client's
   * address, for the log).
   */
  handler(request: Request, info?: Deno.ServeHandlerInfo): Promise<Response>;
  /**
   * Ends every open stream cleanly (each client gets the end of its stream)
   * and answers later `/sse` requests with 503, so that a server's
   * `shutdown()` can finish.
   */
  shutdown(): void;
  /** Live counters, for tests and the log. */
  readonly stats: DemoStats;
}

/** A handler for one method of one route. */
type Route = (
  request: Request,
  client: string,
  url: URL,
) => Response | Promise<Response>;

const INTEGER = /^[+-]?\d+$/;

/**
 * Creates the demo app. Nothing listens until its `handler` is served.
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
  const writers = new Set<SseWriter>();
  const stats = { opened: 0, ticksSent: 0 };
  let shuttingDown = false;

  /** `GET /sse`: one stream of ticks for this connection. */
  const streamTicks: Route = (request, client, url) => {
    const query = parseQuery(url);
    if (typeof query === "string") {
      log.warn(`sse rejected from ${client}: ${query}`);
      return text(400, `Bad request: ${query}`);
    }
    if (shuttingDown) {
      return text(503, "Service unavailable: the server is shutting down");
    }
    const { count, intervalMs } = query;
    const resumeAfter = parseLastEventId(lastEventId(request), count);
    const id = ++stats.opened;
    log.info(
      `sse opened #${id} count=${count} intervalMs=${intervalMs} from ${client}` +
        (resumeAfter > 0 ? ` resuming after ${resumeAfter}` : ""),
    );

    const writer = new SseWriter({ signal: request.signal });
    writers.add(writer);
    let sent = 0;
    let outcome: "complete" | "failed" | undefined;
    // Logged the moment the stream ends, whatever ended it.
    const onClose = () => {
      writers.delete(writer);
      const why = outcome ?? (shuttingDown ? "server shutdown" : "client left");
      log.info(`sse closed #${id} ${why}, sent ${ticks(sent)}`);
    };
    // A client that left before this handler ran ends the writer at once.
    if (writer.signal.aborted) onClose();
    else writer.signal.addEventListener("abort", onClose, { once: true });

    produceTicks(writer, count, intervalMs, resumeAfter, (i) => {
      sent++;
      stats.ticksSent++;
      log.debug(`sse #${id} tick ${i}/${count}`);
    }).then(() => {
      outcome = "complete";
      writer.close();
    }, (error: unknown) => {
      if (error instanceof SseClosedError) return; // the stream ended first
      outcome = "failed";
      log.error(
        `sse #${id} failed: ${error instanceof Error ? error.stack : error}`,
      );
      writer.close();
    });
    return writer.response;
  };

  /** The broadcast room: one channel, every client of `/broadcast`. */
  const { backplane } = options;
  const room = new SseChannel({ backplane });
  // Facts about this server only (how many clients it has, whether it
  // reaches Redis) go to its own clients, and into no shared history.
  const redis = backplane instanceof RedisBackplane ? backplane : undefined;
  const announce = () => {
    if (room.closed) return;
    room.sendLocal({ event: "clients", data: { count: room.size } });
  };
  const announceBackplane = () => {
    if (room.closed || redis === undefined) return;
    room.sendLocal({ event: "backplane", data: { state: redis.state } });
  };
  redis?.addEventListener("statechange", announceBackplane);

  /** `GET /broadcast/events`: joins the room (resuming, if reconnecting). */
  const joinRoom: Route = (request, client) => {
    if (shuttingDown) {
      return text(503, "Service unavailable: the server is shutting down");
    }
    const response = room.connect(request, {
      onClose() {
        log.info(`broadcast left by ${client}, ${room.size} connected`);
        announce();
      },
    });
    log.info(`broadcast joined from ${client}, ${room.size} connected`);
    announce();
    announceBackplane();
    return response;
  };

  /** `POST /broadcast/messages`: a text/plain message for every client. */
  const postMessage: Route = async (request, client) => {
    const message = await readMessage(request);
    if (message.error !== undefined) {
      log.warn(`broadcast message rejected from ${client}: ${message.error}`);
      return text(400, `Bad request: ${message.error}`);
    }
    if (shuttingDown) {
      return text(503, "Service unavailable: the server is shutting down");
    }
    if (redis?.state === "unreachable") {
      return text(
        503,
        "Service unavailable: this server cannot reach Redis now; the message was not sent",
      );
    }
    // Resolves once the message has its place in the room's order (at
    // once, without a backplane): every server then delivers it.
    const sent = await publishWithin(room, {
      event: "message",
      data: { text: message.text, at: new Date().toISOString() },
    }, PUBLISH_TIMEOUT_MS);
    if (sent.id === undefined) {
      if (sent.error instanceof SseClosedError) {
        return text(503, "Service unavailable: the server is shutting down");
      }
      log.warn(`broadcast message from ${client} not sent: ${sent.error}`);
      return text(503, `Service unavailable: ${sent.message}`);
    }
    log.info(`broadcast message ${sent.id} from ${client} to ${room.size}`);
    return new Response(JSON.stringify({ id: sent.id }) + "\n", {
      status: 201,
      headers: { "content-type": "application/json; charset=utf-8" },
    });
  };

  /** A file of static/, read on each request so that edits show at once. */
  const asset = (file: string, type: string): Route => async () => {
    const url = new URL(`./static/${file}`, import.meta.url);
    try {
      // fetch reads file: URLs as well as https: ones, so the demo also
      // runs straight from a remote URL.
      const response = await fetch(url);
      if (!response.ok) throw new Error(`${response.status} for ${url}`);
      return new Response(await response.arrayBuffer(), {
        headers: {
          "content-type": type,
          "cache-control": "no-cache",
          "x-content-type-options": "nosniff",
          "content-security-policy": "default-src 'self'",
        },
      });
    } catch (error) {
      log.error(`cannot read ${url}: ${(error as Error).message}`);
      return text(500, "Internal server error");
    }
  };

  // Every route, by exact path and method. Nothing else is served: no path
  // from a request reaches the file system.
  const routes: Record<string, Record<string, Route>> = {
    "/": { GET: asset("index.html", "text/html; charset=utf-8") },
    "/app.js": { GET: asset("app.js", "text/javascript; charset=utf-8") },
    "/style.css": { GET: asset("style.css", "text/css; charset=utf-8") },
    "/favicon.svg": { GET: asset("favicon.svg", "image/svg+xml") },
    "/sse": { GET: streamTicks },
    "/broadcast": {
      GET: asset("broadcast.html", "text/html; charset=utf-8"),
    },
    "/broadcast.js": {
      GET: asset("broadcast.js", "text/javascript; charset=utf-8"),
    },
    "/broadcast/events": { GET: joinRoom },
    "/broadcast/messages": { POST: postMessage },
  };

  async function handler(
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ): Promise<Response> {
    const url = requestUrl(request);
    const pathname = url?.pathname ?? "?";
    const client = info !== undefined && "hostname" in info.remoteAddr
      ? info.remoteAddr.hostname
      : "unknown";
    const methods = url !== undefined && Object.hasOwn(routes, pathname)
      ? routes[pathname]
      : null;
    let response: Response;
    if (url === undefined) {
      response = text(400, "Bad request: the Host header is not a host");
    } else if (methods === null) {
      response = text(404, "Not found");
    } else if (!Object.hasOwn(methods, request.method)) {
      const allow = Object.keys(methods).join(", ");
      response = text(405, `Method not allowed: use ${allow}`, { allow });
    } else {
      response = await methods[request.method](request, client, url);
    }
    log.debug(`${request.method} ${pathname} ${response.status} ${client}`);
    return response;
  }

  function shutdown(): void {
    shuttingDown = true;
    redis?.removeEventListener("statechange", announceBackplane);
    const open = writers.size;
    if (open > 0) {
      log.info(`ending ${open} open stream${open === 1 ? "" : "s"}`);
    }
    for (const writer of writers) writer.close();
    room.close();
  }

  return {
    handler,
    shutdown,
    stats: {
      get opened() {
        return stats.opened;
      },
      get open() {
        return writers.size;
      },
      get ticksSent() {
        return stats.ticksSent;
      },
      get broadcastClients() {
        return room.size;
      },
    },
  };
}

/**
 * Writes the stream: `connected`, the ticks after `resumeAfter`, then
 * `complete`. Resolves when all is written; rejects with `SseClosedError`
 * if the stream ends first. Ticks keep to a fixed schedule, so a slow write
 * does not push the later ones back.
 */
async function produceTicks(
  writer: SseWriter,
  count: number,
  intervalMs: number,
  resumeAfter: number,
  onTick: (i: number) => void,
): Promise<void> {
  await writer.write({
    event: "connected",
    retry: RETRY_MS,
    data: {
      message: resumeAfter > 0
        ? `Resuming after tick ${resumeAfter} of ${count}`
        : `Streaming ${ticks(count)}, one every ${intervalMs} ms`,
      serverTime: new Date().toISOString(),
      count,
      intervalMs,
    },
  });
  const start = performance.now();
  for (let i = resumeAfter + 1; i <= count; i++) {
    const due = start + (i - resumeAfter) * intervalMs;
    await sleep(due - performance.now(), writer.signal);
    const queued = writer.write({
      event: "tick",
      id: i,
      data: { i, total: count, timestamp: new Date().toISOString() },
    });
    // Counted now: the client may have it before this function resumes.
    if (!writer.closed) onTick(i);
    await queued;
  }
  await writer.write({
    event: "complete",
    data: {
      message: count === 1 ? "Sent the 1 tick" : `Sent all ${count} ticks`,
      total: count,
      serverTime: new Date().toISOString(),
    },
  });
}

/**
 * Resolves after `ms` milliseconds; rejects with `SseClosedError` as soon as
 * `signal` aborts, clearing its timer, so a stream that ended holds none.
 */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new SseClosedError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(new SseClosedError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Publishes `event` to `room`, waiting at most `ms` milliseconds: the id, or
 * the error and what to tell the client. At the limit, a message the
 * backplane has not sent yet is withdrawn, so the client can be told it was
 * not sent; one already sent, whose outcome Redis has not confirmed, may
 * still appear, and the client is told that.
 */
async function publishWithin(
  room: SseChannel,
  event: SseEvent,
  ms: number,
): Promise<
  { id: string } | { id?: undefined; error: unknown; message: string }
> {
  const controller = new AbortController();
  const reason = new DOMException(
    `Redis did not answer within ${ms} ms`,
    "TimeoutError",
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => {
      controller.abort(reason); // a withdrawn message rejects right here
      resolve("late");
    }, ms);
  });
  const published = room.publish(event, { signal: controller.signal });
  published.catch(() => {}); // it may settle after the answer has gone
  try {
    const id = await Promise.race([published, late]);
    if (id !== "late") return { id };
    return {
      error: new Error(`Redis did not confirm it within ${ms} ms`),
      message:
        `Redis did not confirm the message within ${ms} ms; it may still appear`,
    };
  } catch (error) {
    return {
      error,
      message: error === reason
        ? `Redis did not answer within ${ms} ms; the message was not sent`
        : "the message was not sent",
    };
  } finally {
    clearTimeout(timer);
  }
}

/** A host, an IPv6 literal or IPv4 address, and a port (RFC 3986). */
const HOST = /^(?:[\w.~!$&'()*+,;=%-]+|\[[\da-fA-F:.]+\])(?::\d{1,5})?$/;

/**
 * The URL of a request, or `undefined` if its `Host` header is not a host.
 * Deno builds `request.url` from the Host header as it came, so a host with
 * `?`, `#` or `/` in it would move the path (and a space or a bad port make
 * the URL throw).
 */
function requestUrl(request: Request): URL | undefined {
  const host = request.headers.get("host");
  if (host !== null && !HOST.test(host)) return undefined;
  try {
    return new URL(request.url);
  } catch {
    return undefined;
  }
}

/** The `/sse` query, or the message for a 400. */
function parseQuery(url: URL): { count: number; intervalMs: number } | string {
  const count = parseParameter(url, "count", DEFAULT_COUNT, MAX_COUNT);
  if (typeof count === "string") return count;
  const intervalMs = parseParameter(
    url,
    "intervalMs",
    DEFAULT_INTERVAL_MS,
    MAX_INTERVAL_MS,
  );
  if (typeof intervalMs === "string") return intervalMs;
  return { count, intervalMs };
}

/**
 * A query parameter as an integer: the default when absent, empty or ≤ 0;
 * the message for a 400 when not an integer or above `max`.
 */
function parseParameter(
  url: URL,
  name: string,
  fallback: number,
  max: number,
): number | string {
  const raw = url.searchParams.get(name) ?? "";
  if (raw === "") return fallback;
  const value = INTEGER.test(raw) ? Number(raw) : NaN;
  if (value <= 0) return fallback;
  if (!(value <= max)) {
    const shown = raw.length > 40 ? `${raw.slice(0, 37)}...` : raw;
    return `\`${name}\` must be an integer from 1 to ${max}, got ${
      JSON.stringify(shown)
    }`;
  }
  return value;
}

/**
 * The tick a reconnecting client saw last: 0 (start over) for no id or one
 * that is not a tick of this stream, at most `count` (only `complete` left).
 */
function parseLastEventId(id: string | undefined, count: number): number {
  if (id === undefined || !/^\d+$/.test(id)) return 0;
  return Math.min(Number(id), count);
}

/**
 * The text of a broadcast message, or why it is refused: not text/plain, not
 * UTF-8, empty, or longer than {@linkcode MAX_MESSAGE_LENGTH}. Reads at most
 * a few times that many bytes, however much the client sends.
 */
async function readMessage(
  request: Request,
): Promise<{ text: string; error?: undefined } | { error: string }> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^text\/plain\s*(;|$)/i.test(type)) {
    return { error: "a message must be sent as text/plain" };
  }
  const tooLong = `a message is at most ${MAX_MESSAGE_LENGTH} characters`;
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let text = "";
  let size = 0;
  try {
    for await (const chunk of request.body ?? []) {
      size += chunk.length;
      if (size > MAX_MESSAGE_LENGTH * 4) return { error: tooLong };
      text += decoder.decode(chunk, { stream: true });
    }
    text = (text + decoder.decode()).trim();
  } catch {
    return { error: "a message must be UTF-8 text" };
  }
  if (text === "") return { error: "the message is empty" };
  if (text.length > MAX_MESSAGE_LENGTH) return { error: tooLong };
  return { text };
}

/** "1 tick", "2 ticks". */
function ticks(n: number): string {
  return n === 1 ? "1 tick" : `${n} ticks`;
}

function text(
  status: number,
  body: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(body + "\n", {
    status,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "x-content-type-options": "nosniff",
      ...headers,
    },
  });
}

type Logger = Record<LogLevel, (message: string) => void>;

/** Lines like `2026-11-25T12:00:00Z INFO  sse opened #3 ...`. */
function createLogger(
  level: LogLevel,
  sink: (line: string) => void = console.error,
): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const logger = {} as Logger;
  for (const [index, name] of LOG_LEVELS.entries()) {
    logger[name] = index > threshold ? () => {} : (message) => {
      const time = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      sink(`${time} ${name.toUpperCase().padEnd(5)} ${message}`);
    };
  }
  return logger;
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
