/**
 * The demo's tick stream: the page `/` and `GET /sse`, one stream of ticks
 * per connection, each written by its own {@linkcode SseWriter}.
 *
 * @module
 */

import { lastEventId, SseClosedError, SseWriter } from "../mod.ts";
import {
  asset,
  type DemoApp,
  type Logger,
  quote,
  repeatedParameter,
  type Route,
  shuttingDown,
  streamHead,
  text,
} from "./http.ts";

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

/** Counters of the tick streams. */
export interface TickStats {
  /** Streams opened since the app was created. */
  readonly opened: number;
  /** Streams open now. */
  readonly open: number;
  /** Streams that ended, for whatever reason. */
  readonly closed: number;
  /** Tick events written, over all streams. */
  readonly ticksSent: number;
}

/** The query parameters of `/sse`, each of which may be given once. */
const PARAMETERS = ["count", "intervalMs", "lastEventId"] as const;

const INTEGER = /^[+-]?\d+$/;

/**
 * Creates the tick stream: its page, its script and `GET /sse`, whose
 * streams send a keep-alive comment after `keepAlive` ms of silence (as
 * `SseWriter` takes it). Its shutdown ends every open stream cleanly (each
 * client gets the end of its stream) and answers later `/sse` requests with
 * 503.
 */
export function createTicks(
  log: Logger,
  { keepAlive }: { keepAlive?: number } = {},
): DemoApp<TickStats> {
  const writers = new Set<SseWriter>();
  const stats = { opened: 0, closed: 0, ticksSent: 0 };
  let closed = false;

  /** `GET /sse`: one stream of ticks for this connection. */
  const streamTicks: Route = (request, client, url) => {
    const query = parseQuery(url);
    if (typeof query === "string") {
      log.warn(`sse rejected from ${client}: ${query}`);
      return text(400, `Bad request: ${query}`);
    }
    if (closed) return shuttingDown();
    if (request.method === "HEAD") return streamHead();
    const { count, intervalMs } = query;
    const resumeAfter = parseLastEventId(lastEventId(request), count);
    const id = ++stats.opened;
    log.info(
      `sse opened #${id} count=${count} intervalMs=${intervalMs} from ${client}` +
        (resumeAfter > 0 ? ` resuming after ${resumeAfter}` : ""),
    );

    const writer = new SseWriter({ signal: request.signal, keepAlive });
    writers.add(writer);
    let sent = 0;
    let outcome: "complete" | "failed" | undefined;
    // Logged the moment the stream ends, whatever ended it.
    const onClose = () => {
      writers.delete(writer);
      stats.closed++;
      const why = outcome ?? (closed ? "server shutdown" : "client left");
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

  return {
    routes: {
      "/": { GET: asset("index.html", "text/html; charset=utf-8", log) },
      "/ticks.js": {
        GET: asset("ticks.js", "text/javascript; charset=utf-8", log),
      },
      "/sse": { GET: streamTicks },
    },
    shutdown() {
      closed = true;
      const open = writers.size;
      if (open > 0) {
        log.info(`ending ${open} open stream${open === 1 ? "" : "s"}`);
      }
      for (const writer of writers) writer.close();
    },
    stats: {
      get opened() {
        return stats.opened;
      },
      get open() {
        return writers.size;
      },
      get closed() {
        return stats.closed;
      },
      get ticksSent() {
        return stats.ticksSent;
      },
    },
    metrics: () => [
      {
        name: "ssekit_demo_tick_streams_open",
        help: "Tick streams (/sse) open now.",
        type: "gauge",
        samples: [{ value: writers.size }],
      },
      {
        name: "ssekit_demo_tick_streams_opened_total",
        help: "Tick streams opened.",
        type: "counter",
        samples: [{ value: stats.opened }],
      },
      {
        name: "ssekit_demo_tick_streams_closed_total",
        help: "Tick streams that ended: complete, client left, or shutdown.",
        type: "counter",
        samples: [{ value: stats.closed }],
      },
      {
        name: "ssekit_demo_ticks_sent_total",
        help: "Tick events written, over all tick streams.",
        type: "counter",
        samples: [{ value: stats.ticksSent }],
      },
    ],
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

/** The `/sse` query, or the message for a 400. */
function parseQuery(url: URL): { count: number; intervalMs: number } | string {
  const repeated = repeatedParameter(url, PARAMETERS);
  if (repeated !== undefined) return repeated;
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
    return `\`${name}\` must be an integer from 1 to ${max}, got ${quote(raw)}`;
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

/** "1 tick", "2 ticks". */
function ticks(n: number): string {
  return n === 1 ? "1 tick" : `${n} ticks`;
}
