// Internal to ssekit: what an SseClient is given, and its checks, kept
// apart from the client's life so that client.ts reads as that life.
// client.ts exports the types; mod.ts exports them from there.

import {
  checkInteger,
  checkOneLine,
  describe,
  MAX_TIMER_DELAY,
} from "./_validate.ts";
import type { SseMessage } from "./_parse.ts";

/**
 * A request body that can be sent again on every reconnect. A
 * `ReadableStream` can be read only once, so it is not one.
 */
export type SseClientBody =
  | string
  | Blob
  | ArrayBuffer
  | ArrayBufferView<ArrayBuffer>
  | FormData
  | URLSearchParams;

/**
 * What {@linkcode SseClient} takes: `fetch`'s `RequestInit` (its `method`,
 * `headers`, `body`, `signal`, `credentials`, …) and the client's own
 * options. The request is sent as it is on every reconnect, with
 * `Last-Event-ID` added, `accept: text/event-stream` unless `headers` set
 * one, and `cache: "no-store"` unless `cache` is set.
 *
 * @example Stream an answer from an LLM-style API
 * ```ts
 * import type { SseClientInit } from "./client.ts";
 *
 * const init: SseClientInit = {
 *   method: "POST",
 *   headers: { authorization: "Bearer sk-…", "content-type": "application/json" },
 *   body: JSON.stringify({ prompt: "Hello", stream: true }),
 *   reconnect: "dropped", // the answer ends with the stream
 *   retryMax: 10_000,
 * };
 * ```
 */
export interface SseClientInit
  extends Omit<RequestInit, "body" | "signal" | "headers"> {
  /**
   * Request headers. `Last-Event-ID` is the client's to set (see
   * `lastEventId`).
   */
  headers?: HeadersInit;
  /**
   * The request body, sent again with every reconnect: so a string,
   * `Blob`, `ArrayBuffer`, typed array, `FormData` or `URLSearchParams`,
   * and not a `ReadableStream`.
   */
  body?: SseClientBody | null;
  /**
   * Stops the client when aborted, as `close()` does, but with the
   * signal's reason as its `error`: an iteration throws it.
   */
  signal?: AbortSignal | null;
  /**
   * Milliseconds to wait before reconnecting, until the server sends a
   * `retry:` field (which then counts instead).
   *
   * @default {3000}
   */
  retry?: number;
  /**
   * The longest wait between reconnects, in milliseconds, however many
   * fail in a row: each failure doubles the wait, with jitter, up to this.
   *
   * @default {30000}
   */
  retryMax?: number;
  /**
   * When to reconnect: `"always"` (as `EventSource`: when the connection
   * drops and when the server ends the stream), `"dropped"` (only when the
   * connection breaks off; a stream the server ends closes the client, as
   * for an answer that ends when it is complete), or `"never"` (one
   * request; a connection that breaks off stops the client with its
   * error).
   *
   * @default {"always"}
   */
  reconnect?: "always" | "dropped" | "never";
  /**
   * How long an open stream may send nothing at all, not even a comment,
   * before the client takes the connection for dead and reconnects, in
   * milliseconds; 0 waits for ever, as `EventSource` does. A connection
   * whose other end vanished (a proxy or a laptop gone, no FIN sent) looks
   * just like a quiet one otherwise. Time the app spends before taking the
   * messages it has does not count. An ssekit server sends a comment after
   * 5 s of silence, so 15000 finds a dead connection within 15 s.
   *
   * @default {0}
   */
  idleTimeout?: number;
  /**
   * The id to send as `Last-Event-ID` on the first request, to resume
   * where an earlier client stopped. No CR, LF or NUL.
   *
   * @default {""}
   */
  lastEventId?: string;
  /**
   * The longest line, and the most data one event may gather, in UTF-16
   * code units (bytes, for ASCII). A server that sends more stops the
   * client with a `RangeError`.
   *
   * @default {1048576}
   */
  maxEventSize?: number;
  /**
   * Called with each message, in order. With it, the client is not
   * iterated.
   */
  onMessage?: (message: SseMessage) => void;
  /**
   * Called with the reason when an ssekit channel resets the client
   * (`event: reset`, data `{"reason": …}`): it could not resume, and the
   * app should reload its state. The reset message is delivered too.
   */
  onReset?: (reason: string) => void;
  /**
   * The `fetch` to send each request with.
   *
   * @default {globalThis.fetch}
   */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
}

/** What the client keeps of its input, once checked. */
export interface CheckedInit {
  url: string;
  /** The rest of the request, without headers and signal. */
  request: RequestInit;
  headers: Headers;
  fetch: (input: string, init: RequestInit) => Promise<Response>;
  reconnect: "always" | "dropped" | "never";
  retry: number;
  idleTimeout: number;
  retryMax: number;
  lastEventId: string;
}

const RECONNECT = ["always", "dropped", "never"];

function baseUrl(): string | undefined {
  try {
    return globalThis.location?.href;
  } catch {
    return undefined; // Deno without --location throws here
  }
}

function isBody(body: unknown): boolean {
  return typeof body === "string" || body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) || body instanceof Blob ||
    body instanceof FormData || body instanceof URLSearchParams;
}

function checkFunction(action: string, name: string, value: unknown): void {
  if (value !== undefined && typeof value !== "function") {
    throw new TypeError(
      `${action}: \`${name}\` must be a function, got ${describe(value)}`,
    );
  }
}

/** Checks what a client was given; throws at the first thing wrong. */
export function checkClientInit(
  action: string,
  input: unknown,
  init: SseClientInit,
): CheckedInit {
  let url: string;
  try {
    if (typeof input !== "string" && !(input instanceof URL)) throw 0;
    url = new URL(input, baseUrl()).href;
  } catch {
    throw new TypeError(
      `${action}: \`input\` must be a URL, got ${describe(input)}`,
    );
  }
  if (init === null || typeof init !== "object") {
    throw new TypeError(
      `${action}: \`init\` must be an object, got ${describe(init)}`,
    );
  }
  const {
    headers: headersInit,
    body,
    signal,
    retry = 3000,
    retryMax = 30_000,
    reconnect = "always",
    idleTimeout = 0,
    lastEventId = "",
    maxEventSize: _,
    onMessage,
    onReset,
    fetch: fetcher = (input, init) => fetch(input, init),
    ...rest
  } = init;
  checkInteger(action, "retry", retry, {
    max: MAX_TIMER_DELAY,
    rule: `milliseconds from 0 to ${MAX_TIMER_DELAY}`,
  });
  checkInteger(action, "retryMax", retryMax, {
    min: 1,
    max: MAX_TIMER_DELAY,
    rule: `milliseconds from 1 to ${MAX_TIMER_DELAY}`,
  });
  checkInteger(action, "idleTimeout", idleTimeout, {
    max: MAX_TIMER_DELAY,
    rule: `milliseconds from 0 to ${MAX_TIMER_DELAY}`,
  });
  if (!RECONNECT.includes(reconnect)) {
    throw new TypeError(
      `${action}: \`reconnect\` must be "always", "dropped" or "never", got ${
        describe(reconnect)
      }`,
    );
  }
  if (typeof lastEventId !== "string") {
    throw new TypeError(
      `${action}: \`lastEventId\` must be a string, got ${
        describe(lastEventId)
      }`,
    );
  }
  checkOneLine(action, "lastEventId", lastEventId, true);
  checkFunction(action, "onMessage", onMessage);
  checkFunction(action, "onReset", onReset);
  checkFunction(action, "fetch", fetcher);
  if (signal != null && !(signal instanceof AbortSignal)) {
    throw new TypeError(
      `${action}: \`signal\` must be an AbortSignal, got ${describe(signal)}`,
    );
  }
  if (body != null && !isBody(body)) {
    throw new TypeError(
      `${action}: \`body\` must be one that can be sent again on each reconnect (a string, Blob, ArrayBuffer, typed array, FormData or URLSearchParams), got ${
        body instanceof ReadableStream ? "a ReadableStream" : describe(body)
      }`,
    );
  }
  let headers: Headers;
  try {
    headers = new Headers(headersInit);
  } catch (error) {
    throw new TypeError(`${action}: \`headers\`: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!headers.has("accept")) headers.set("accept", "text/event-stream");
  return {
    url,
    request: { cache: "no-store", ...rest, body },
    headers,
    fetch: fetcher,
    reconnect,
    retry,
    retryMax,
    idleTimeout,
    lastEventId,
  };
}
