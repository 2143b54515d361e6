/**
 * The other end of an event stream: {@linkcode SseClient}, a `fetch`-based
 * client that resumes where it left off, and the spec-exact parser it runs,
 * {@linkcode SseParseStream} (and {@linkcode parseEvents} for a string).
 * Web standards only: it runs in browsers, Deno, Node 20+, Bun and workers.
 *
 * Unlike the browser's `EventSource`, the client sends any method, headers
 * and body, which is how LLM APIs stream their answers; like it, it
 * reconnects with `Last-Event-ID`, honours `retry`, and stops on a 204.
 *
 * @example Read a stream until the server says it is done
 * ```ts
 * import { SseClient } from "./client.ts";
 * import { SseWriter } from "./mod.ts";
 *
 * // A server's handler, called in process here instead of over a network.
 * function handler(_request: Request): Response {
 *   const writer = new SseWriter();
 *   writer.write({ id: 1, data: "hello" });
 *   writer.write({ event: "done", data: "" });
 *   writer.close();
 *   return writer.response;
 * }
 *
 * const client = new SseClient("http://localhost/events", {
 *   fetch: (url, init) => Promise.resolve(handler(new Request(url, init))),
 * });
 * for await (const message of client) {
 *   if (message.type === "done") break; // leaving the loop closes the client
 *   message; // { type: "message", data: "hello", lastEventId: "1" }
 * }
 * ```
 *
 * @module
 */

import { MAX_TIMER_DELAY } from "./_validate.ts";
import {
  checkMaxEventSize,
  EventStreamParser,
  type SseMessage,
} from "./_parse.ts";
import { checkClientInit, type SseClientInit } from "./_client_init.ts";
import { judge } from "./_client_response.ts";
import { Inbox } from "./_inbox.ts";

export type { SseMessage, SseParseOptions } from "./_parse.ts";
export { parseEvents, SseParseStream } from "./_parse_stream.ts";
export type { SseClientBody, SseClientInit } from "./_client_init.ts";
export { SseResponseError } from "./_client_response.ts";

/**
 * Where an {@linkcode SseClient} is: `"connecting"` while a request is under
 * way, `"open"` while a stream is read, `"retrying"` while it waits
 * `retryDelay` ms to reconnect, and `"closed"` for good (with `error` set
 * if something went wrong).
 */
export type SseClientState = "connecting" | "open" | "retrying" | "closed";

const CREATE = "Cannot create SseClient";
const ENCODER = new TextEncoder();

/** `Last-Event-ID` as fetch can send it: its UTF-8 bytes, one per unit. */
function headerValue(id: string): string {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(id)) return id;
  let value = "";
  for (const byte of ENCODER.encode(id)) value += String.fromCharCode(byte);
  return value;
}

/** Calls a callback; what it throws is reported as a listener's error is. */
function call<T>(callback: (value: T) => void, value: T): void {
  try {
    callback(value);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

/**
 * Reads an event stream with `fetch`, and keeps reading it across dropped
 * connections, as `EventSource` does, with any method, headers and body.
 * Iterate it (`for await (const message of client)`) or pass `onMessage`.
 *
 * - **Resume.** When the connection drops, or the server ends the stream,
 *   the client waits `retry` ms (3000, as Chromium and Safari do, until the
 *   server sends a `retry:` field), then sends the request again with
 *   `Last-Event-ID` set to the last id it received. Failures in a row wait
 *   twice as long each time, with jitter (between half and all of the
 *   doubled wait, never under `retry`), up to `retryMax` ms. `reconnect`
 *   chooses when to reconnect at all. With `idleTimeout`, a stream that
 *   sends nothing for that long counts as dropped, so that a connection
 *   whose other end vanished without a word is found.
 * - **Stops** for good, with `error` set and the iteration throwing it, on
 *   a status other than 2xx or a content type other than
 *   `text/event-stream` ({@linkcode SseResponseError}), on a line or event
 *   over `maxEventSize` (`RangeError`), and when `signal` aborts (its
 *   reason). It stops quietly on a 204, the spec's way to say "do not
 *   reconnect", and on `close()`.
 * - **Reset.** An ssekit channel that cannot resume a client sends `event:
 *   reset` with data `{"reason": …}`: the client calls `onReset(reason)`,
 *   and the message arrives in order with the others, so that the app can
 *   reload its state.
 * - **State.** `state` is one of {@linkcode SseClientState}; every change
 *   dispatches a `statechange` event.
 * - **Backpressure.** Without `onMessage`, messages wait for the iteration:
 *   the client reads the next chunk from the network once the messages of
 *   the last one are taken.
 *
 * A body is sent again with every reconnect, so it must be one that can
 * be: a string, `Blob`, `ArrayBuffer`, typed array, `FormData` or
 * `URLSearchParams`; a `ReadableStream` is refused.
 *
 * @example Show the state of the stream
 * ```ts
 * import { SseClient } from "./client.ts";
 *
 * const client = new SseClient("http://localhost/events", {
 *   onMessage: (message) => console.log(message.type, message.data),
 *   // In place of a server, for this example: a 204 stops the client.
 *   fetch: () => Promise.resolve(new Response(null, { status: 204 })),
 * });
 * client.addEventListener("statechange", () => {
 *   if (client.state === "retrying") {
 *     console.log(`reconnecting in ${client.retryDelay} ms`);
 *   }
 * });
 * client.state; // "connecting"
 * ```
 */
export class SseClient extends EventTarget
  implements AsyncIterable<SseMessage> {
  /** The URL the client reads, resolved. */
  readonly url: string;
  #init: RequestInit;
  #headers: Headers;
  #fetch: (input: string, init: RequestInit) => Promise<Response>;
  #reconnect: "always" | "dropped" | "never";
  #retry: number;
  #retryMax: number;
  #idleTimeout: number;
  #maxEventSize: number;
  #onMessage: ((message: SseMessage) => void) | undefined;
  #onReset: ((reason: string) => void) | undefined;
  #signal: AbortSignal | undefined;
  /** Ends the request under way, whichever it is, on close. */
  #abort = new AbortController();
  #state: SseClientState = "connecting";
  #error: unknown;
  #retryDelay: number | undefined;
  #failures = 0;
  #lastEventId: string;
  /** Messages that wait for the iteration (none with `onMessage`). */
  #inbox = new Inbox<SseMessage>();
  #iterated = false;
  /** Ends the wait before a reconnect. */
  #wake: (() => void) | undefined;

  /**
   * Creates the client and sends the first request at once; see
   * {@linkcode SseClientInit} for the options and their defaults.
   */
  constructor(input: string | URL, init: SseClientInit = {}) {
    super();
    const checked = checkClientInit(CREATE, input, init);
    this.url = checked.url;
    this.#init = checked.request;
    this.#headers = checked.headers;
    this.#fetch = checked.fetch;
    this.#reconnect = checked.reconnect;
    this.#retry = checked.retry;
    this.#retryMax = checked.retryMax;
    this.#idleTimeout = checked.idleTimeout;
    this.#lastEventId = checked.lastEventId;
    this.#maxEventSize = checkMaxEventSize(CREATE, init.maxEventSize);
    this.#onMessage = init.onMessage;
    this.#onReset = init.onReset;
    const { signal } = init;
    if (signal?.aborted) {
      this.#finish(signal.reason, true);
      return;
    }
    this.#signal = signal ?? undefined;
    signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#run().catch((error) => this.#finish(error, false));
  }

  /** Where the client is now; a `statechange` event tells of each change. */
  get state(): SseClientState {
    return this.#state;
  }

  /**
   * While `retrying`, why the connection ended (`undefined` if the server
   * ended the stream); once `closed`, why the client stopped, or
   * `undefined` if nothing went wrong.
   */
  get error(): unknown {
    return this.#error;
  }

  /** While `retrying`, how long this wait is, in milliseconds. */
  get retryDelay(): number | undefined {
    return this.#retryDelay;
  }

  /** Connections in a row that failed or dropped; 0 once one opens. */
  get failures(): number {
    return this.#failures;
  }

  /** The reconnection time, in milliseconds: `retry`, or the server's. */
  get retry(): number {
    return this.#retry;
  }

  /** The last event id received: what a reconnect sends. */
  get lastEventId(): string {
    return this.#lastEventId;
  }

  /**
   * Stops the client for good: no more requests, no more messages, and an
   * iteration ends (without the messages it had not taken yet).
   * Idempotent.
   */
  close(): void {
    this.#finish(undefined, true);
  }

  /**
   * The messages, in order, until the client closes; throws what stopped
   * it, if something did. Leaving the loop closes the client. A client is
   * iterated once, and not at all with `onMessage`.
   */
  [Symbol.asyncIterator](): AsyncIterator<SseMessage> {
    if (this.#onMessage !== undefined || this.#iterated) {
      throw new TypeError(
        `Cannot iterate SseClient: ${
          this.#iterated
            ? "it is already iterated"
            : "its messages go to `onMessage`"
        }`,
      );
    }
    this.#iterated = true;
    return {
      next: () => this.#inbox.next(),
      return: () => {
        this.close();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  #onAbort = (): void => this.#finish(this.#signal!.reason, true);

  /** Connects, reads, and reconnects, until the client closes. */
  async #run(): Promise<void> {
    for (;;) {
      this.#setState("connecting");
      if (this.#closed()) return; // by a statechange listener
      let response: Response;
      try {
        const send = this.#fetch; // called as a function: browsers insist
        response = await send(this.url, this.#request());
      } catch (error) {
        if (!await this.#dropped(error)) return;
        continue;
      }
      const verdict = this.#closed() ? "stop" : await judge(response);
      if (this.#closed()) {
        response.body?.cancel().catch(() => {});
        return;
      }
      if (verdict !== "open") {
        return this.#finish(verdict === "stop" ? undefined : verdict, false);
      }
      this.#failures = 0;
      this.#setState("open");
      let error: unknown;
      try {
        error = await this.#read(response.body);
      } catch (tooLong) {
        return this.#finish(tooLong, false);
      }
      if (error === undefined && this.#reconnect !== "always") {
        return this.#finish(undefined, false);
      }
      if (!await this.#dropped(error)) return;
    }
  }

  #request(): RequestInit {
    const headers = new Headers(this.#headers);
    headers.delete("last-event-id"); // the stream's, not the caller's
    if (this.#lastEventId !== "") {
      headers.set("last-event-id", headerValue(this.#lastEventId));
    }
    return { ...this.#init, headers, signal: this.#abort.signal };
  }

  /**
   * Reads one stream to its end: resolves with `undefined` when the server
   * ended it, with the error when it broke off or sent nothing for
   * `idleTimeout` ms; throws when the server overran `maxEventSize`.
   */
  async #read(body: ReadableStream<Uint8Array> | null): Promise<unknown> {
    if (body === null) return undefined;
    const parser = new EventStreamParser(
      this.#deliver,
      this.#maxEventSize,
      this.#lastEventId,
    );
    const reader = body.getReader();
    const idle = this.#idleTimeout;
    /** When the read under way began (`Date.now()`); -1 between reads. */
    let readSince = -1;
    let idleError: DOMException | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // One timer for the whole stream, not one per read: when it fires, it
    // looks how long the read under way has waited, and sets itself again
    // for the rest of `idle`.
    const look = () => {
      const waited = readSince === -1 ? 0 : Date.now() - readSince;
      if (waited < idle) {
        timer = setTimeout(look, idle - waited);
        return;
      }
      timer = undefined;
      idleError = new DOMException(
        `Cannot read event stream: nothing came for ${idle} ms (\`idleTimeout\`)`,
        "TimeoutError",
      );
      reader.cancel(idleError).catch(() => {});
    };
    if (idle > 0) timer = setTimeout(look, idle);
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          if (idle > 0) readSince = Date.now();
          chunk = await reader.read();
        } catch (error) {
          return idleError ?? error ?? new Error("The connection was lost");
        } finally {
          readSince = -1;
        }
        if (idleError !== undefined) return idleError;
        if (chunk.done || this.#closed()) return undefined;
        try {
          parser.feed(chunk.value);
        } finally {
          this.#lastEventId = parser.lastEventId;
          if (parser.retry !== undefined) {
            this.#retry = Math.min(parser.retry, MAX_TIMER_DELAY);
          }
        }
        await this.#inbox.drained();
      }
    } finally {
      clearTimeout(timer);
      reader.cancel().catch(() => {});
    }
  }

  #deliver = (message: SseMessage): void => {
    if (this.#closed()) return;
    if (message.type === "reset" && this.#onReset !== undefined) {
      const reason = resetReason(message.data);
      if (reason !== undefined) call(this.#onReset, reason);
    }
    if (this.#onMessage === undefined) this.#inbox.put(message);
    else call(this.#onMessage, message);
  };

  /**
   * The connection failed or ended: waits to reconnect, or stops as
   * `reconnect` says. Resolves with whether to connect again.
   */
  #dropped(error: unknown): Promise<boolean> {
    if (this.#closed()) return Promise.resolve(false);
    if (error !== undefined && this.#reconnect === "never") {
      this.#finish(error, false);
      return Promise.resolve(false);
    }
    const failures = ++this.#failures;
    const retry = this.#retry;
    let delay = retry;
    if (failures > 1) {
      const doubled = Math.min(this.#retryMax, retry * 2 ** (failures - 1));
      delay = Math.max(retry, Math.round(doubled * (0.5 + Math.random() / 2)));
    }
    this.#error = error;
    this.#retryDelay = delay;
    this.#setState("retrying");
    // A statechange listener may have closed the client.
    if (this.#state !== "retrying") return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        this.#error = this.#retryDelay = undefined;
        resolve(true);
      }, delay);
      this.#wake = () => {
        clearTimeout(timer);
        resolve(false);
      };
    });
  }

  /**
   * The one way the client stops, with `error` if something went wrong.
   * `drop` discards the messages the iteration has not taken (on `close()`
   * and abort); otherwise it gets them before the end or the error.
   */
  #finish(error: unknown, drop: boolean): void {
    if (this.#closed()) return;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#error = error;
    this.#retryDelay = undefined;
    this.#abort.abort();
    this.#wake?.();
    this.#wake = undefined;
    this.#inbox.close(error, drop);
    this.#setState("closed");
  }

  /** A method, not a field test: TypeScript would narrow the state over awaits. */
  #closed(): boolean {
    return this.#state === "closed";
  }

  #setState(state: SseClientState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.dispatchEvent(new Event("statechange"));
  }
}

/** The `reason` of an ssekit reset, or `undefined` if it is not one. */
function resetReason(data: string): string | undefined {
  try {
    const { reason } = JSON.parse(data);
    return typeof reason === "string" ? reason : undefined;
  } catch {
    return undefined;
  }
}
