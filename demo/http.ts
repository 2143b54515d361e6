/**
 * What both apps of the demo share: the route table and the dispatch over
 * it, plain-text answers, the static files, and the log.
 *
 * @module
 */

import { SseWriter } from "../mod.ts";
import type { Metric } from "./metrics.ts";

/** Log levels, most severe first. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
/** One of {@linkcode LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/** One function per level; those below the chosen level do nothing. */
export type Logger = Record<LogLevel, (message: string) => void>;

/** A handler for one method of one route. */
export type Route = (
  request: Request,
  client: string,
  url: URL,
) => Response | Promise<Response>;

/** Routes by exact path, then by method. */
export type Routes = Record<string, Record<string, Route>>;

/** What each app of the demo gives `createDemo`. */
export interface DemoApp<Stats> {
  /** Its paths; no two apps share one. */
  readonly routes: Routes;
  /** Ends its streams; later requests for new ones get a 503. */
  shutdown(): void;
  /** Its live counters. */
  readonly stats: Stats;
  /** Its counters as `/metrics` serves them. */
  metrics(): Metric[];
}

/**
 * The handler for `routes`: a 400 for a request whose `Host` is not a host,
 * 404 for a path with no route, 405 (with `Allow`) for a method it has not.
 * `HEAD` goes to the `GET` route and gets its answer without the body
 * (routes that stream answer `HEAD` with {@linkcode streamHead}, so as not
 * to start a stream). Nothing else is served: no path from a request
 * reaches the file system.
 */
export function createHandler(
  routes: Routes,
  log: Logger,
): (request: Request, info?: Deno.ServeHandlerInfo) => Promise<Response> {
  return async (request, info) => {
    const url = requestUrl(request);
    const pathname = url?.pathname ?? "?";
    const client = info !== undefined && "hostname" in info.remoteAddr
      ? info.remoteAddr.hostname
      : "unknown";
    const methods = url !== undefined && Object.hasOwn(routes, pathname)
      ? routes[pathname]
      : null;
    const method = request.method === "HEAD" && methods !== null &&
        !Object.hasOwn(methods, "HEAD")
      ? "GET"
      : request.method;
    let response: Response;
    if (url === undefined) {
      response = text(400, "Bad request: the Host header is not a host");
    } else if (methods === null) {
      response = text(404, "Not found");
    } else if (!Object.hasOwn(methods, method)) {
      const names = Object.keys(methods);
      if (names.includes("GET")) names.push("HEAD");
      const allow = names.join(", ");
      response = text(405, `Method not allowed: use ${allow}`, { allow });
    } else {
      response = await methods[method](request, client, url);
    }
    if (request.method === "HEAD") response = await withoutBody(response);
    log.debug(`${request.method} ${pathname} ${response.status} ${client}`);
    return response;
  };
}

/**
 * `response` as the answer to `HEAD`: its status and headers, and for a
 * body of known length that length, without the body. Deno 2.9 would leave
 * the body out itself, but over HTTP/2 it ends such a stream with a
 * protocol error. An event stream's empty body (see
 * {@linkcode streamHead}) stays: a stream has no length to tell.
 */
async function withoutBody(response: Response): Promise<Response> {
  const type = response.headers.get("content-type") ?? "";
  if (response.body === null || type.startsWith("text/event-stream")) {
    return response;
  }
  const headers = new Headers(response.headers);
  headers.set("content-length", `${(await response.arrayBuffer()).byteLength}`);
  return new Response(null, { status: response.status, headers });
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

/**
 * A route for a file of `static/`, read on each request so that edits show
 * at once; a 500 (and an error in the log) if it cannot be read.
 */
export function asset(file: string, type: string, log: Logger): Route {
  return async () => {
    const url = new URL(`../static/${file}`, import.meta.url);
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
}

/**
 * The answer of a stream route to `HEAD`: an event stream's headers, from a
 * writer closed at once, so that no stream starts.
 */
export function streamHead(): Response {
  const writer = new SseWriter();
  writer.close();
  return writer.response;
}

/**
 * The message for a 400 if a query parameter of `names` is given more than
 * once: which value was meant is not for the server to guess.
 */
export function repeatedParameter(
  url: URL,
  names: readonly string[],
): string | undefined {
  for (const name of names) {
    const values = url.searchParams.getAll(name);
    if (values.length > 1) {
      return `\`${name}\` must be given once, got ${values.length} values: ${
        values.slice(0, 3).map(quote).join(", ")
      }${values.length > 3 ? ", ..." : ""}`;
    }
  }
  return undefined;
}

/** `raw` in double quotes, cut to 40 characters, for a message. */
export function quote(raw: string): string {
  return JSON.stringify(raw.length > 40 ? `${raw.slice(0, 37)}...` : raw);
}

/** A plain-text answer: `body` and a line break. */
export function text(
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

/** A 503 that says why: `Service unavailable: ${why}`. */
export function unavailable(why: string): Response {
  return text(503, `Service unavailable: ${why}`);
}

/** The 503 for a new stream or message while the demo shuts down. */
export function shuttingDown(): Response {
  return unavailable("the server is shutting down");
}

/** Lines like `2026-11-25T12:00:00Z INFO  sse opened #3 ...`. */
export function createLogger(
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
