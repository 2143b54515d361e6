/**
 * The Server-Sent Events wire format and {@linkcode SseWriter}, a writer that
 * a web-standard handler returns as its `Response`.
 *
 * @module
 */

import {
  checkInteger,
  checkOneLine,
  describe,
  HAS_LINE_BREAK,
  MAX_TIMER_DELAY,
} from "./_validate.ts";
import { type Resolvers, withResolvers } from "./_promise.ts";

/**
 * One server-sent event. Every field is optional, but an event needs at least
 * one, and a named `event` needs `data` (clients dispatch nothing without it).
 *
 * @example Send a named event with JSON data
 * ```ts
 * import { encodeEvent, type SseEvent } from "./sse.ts";
 *
 * const tick: SseEvent = { event: "tick", id: 1, data: { i: 1 } };
 * encodeEvent(tick); // 'event: tick\nid: 1\ndata: {"i":1}\n\n'
 * ```
 */
export interface SseEvent {
  /**
   * The event type; clients dispatch it under this name. No CR, LF or lone
   * surrogate.
   */
  event?: string;
  /**
   * The payload. A string is sent as is, split into one `data:` line per
   * line; any other value is sent as `JSON.stringify(value)`; `undefined`
   * sends no `data:` line. The wire is UTF-8, so a lone surrogate in a
   * string arrives as U+FFFD (JSON escapes it as `\udxxx`, so JSON data
   * arrives intact).
   */
  data?: unknown;
  /**
   * Sets the client's last event id, which it sends back as `Last-Event-ID`
   * when it reconnects. `""` resets it. No CR, LF, NUL or lone surrogate.
   */
  id?: string | number;
  /** How long the client waits before reconnecting, in milliseconds. */
  retry?: number;
}

/** Options for {@linkcode SseWriter}. */
export interface SseWriterOptions {
  /**
   * Ends the stream when aborted, as `close()` does. Pass `request.signal` so
   * the writer also learns of a client that goes away.
   */
  signal?: AbortSignal;
  /**
   * Milliseconds of silence on the wire after which a `:` comment is sent so
   * that servers, proxies and load balancers keep the connection open. `0`
   * turns it off. The default is short enough for the shortest idle timeout
   * common in front of a stream: Bun's, which cuts a quiet stream 9.4–12 s
   * after its last byte (a comment goes out within 1.25 periods).
   *
   * @default {5000}
   */
  keepAlive?: number;
  /**
   * How much queued text (in UTF-16 code units: bytes, for ASCII) the writer
   * holds for a busy client before `write()` makes the producer wait.
   *
   * @default {65536}
   */
  highWaterMark?: number;
  /**
   * Extra response headers. They may replace `cache-control`; hop-by-hop
   * headers (`connection`, `keep-alive`, `transfer-encoding`, …) are
   * rejected because HTTP/2 forbids them.
   */
  headers?: HeadersInit;
  /**
   * The response status: an integer from 200 to 599 that allows a body.
   *
   * @default {200}
   */
  status?: number;
}

/**
 * What `write()` and `comment()` reject with once the writer is closed: the
 * client went away, `close()` was called or `options.signal` aborted.
 *
 * @example Stop producing when the client is gone
 * ```ts
 * import { SseClosedError, SseWriter } from "./sse.ts";
 *
 * const writer = new SseWriter();
 * writer.close();
 * try {
 *   await writer.write({ data: "late" });
 * } catch (error) {
 *   if (!(error instanceof SseClosedError)) throw error;
 *   // The client is gone (or the stream was closed): stop producing.
 * }
 * ```
 */
export class SseClosedError extends Error {
  /** Creates the error; the message says the stream is closed. */
  constructor(message = "Cannot write event: the stream is closed") {
    super(message);
    this.name = "SseClosedError";
  }
}

const ENCODER = new TextEncoder();
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const NON_ASCII_BYTE = /[\x80-\xff]/;
const ABOVE_BYTE = /[\u0100-\uffff]/;
const LINE_BREAK = /\r\n|\r|\n/;
const KEEP_ALIVE_CHUNK = ENCODER.encode(":\n");
const DEFAULT_KEEP_ALIVE = 5000;
const DEFAULT_HIGH_WATER_MARK = 65_536;
const HOP_BY_HOP_HEADERS = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];
const NULL_BODY_STATUSES = [204, 205, 304];
const RESOLVED: Promise<void> = Promise.resolve();
/** Queued text that goes to a waiting client at once, without more looks. */
const CHUNK_SIZE = 16_384;
/** A busy client's queue is encoded in parts of this much text. */
const PART_SIZE = 65_536;

/** Prefixes every line of `text` with `field: `, splitting on CR, LF and CRLF. */
function encodeLines(field: string, text: string): string {
  if (!HAS_LINE_BREAK.test(text)) return `${field}: ${text}\n`;
  return `${field}: ${text.split(LINE_BREAK).join(`\n${field}: `)}\n`;
}

/**
 * The last event name that passed its checks. A stream sends the same few
 * names again and again, and checking one (a regular expression and
 * `isWellFormed`) cost more than the rest of `encodeEvent` together.
 */
let checkedName = "";

function stringifyData(data: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (error) {
    throw new TypeError(
      `Cannot encode event: \`data\` is not JSON-serializable: ${
        (error as Error).message
      }`,
      { cause: error },
    );
  }
  if (json === undefined) {
    throw new TypeError(
      `Cannot encode event: \`data\` is not JSON-serializable: ${
        describe(data)
      }`,
    );
  }
  return json;
}

/**
 * Encodes one event as the exact text sent on the wire, ending in the blank
 * line that makes the client dispatch it. Every field is written as
 * `field: value`, so a value starting with a space keeps it.
 *
 * Throws a `TypeError` for a field of the wrong type, an `event` or `id` with
 * a line break or a lone surrogate, an `id` with NUL, data that
 * `JSON.stringify` cannot encode, a named `event` without `data`, or an event
 * with no field; a `RangeError` for a `retry` that is not a non-negative safe
 * integer or an `id` that is not a finite number.
 *
 * @see {@link https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation}
 *
 * @example Multi-line data becomes one `data:` line per line
 * ```ts
 * import { encodeEvent } from "./sse.ts";
 *
 * encodeEvent({ data: "a\r\nb" }); // "data: a\ndata: b\n\n"
 * try {
 *   encodeEvent({ event: "a\ndata: forged", data: "" });
 * } catch (error) {
 *   // TypeError: Cannot encode event: `event` contains a line break: ...
 * }
 * ```
 */
export function encodeEvent(event: SseEvent): string {
  if (event === null || typeof event !== "object") {
    throw new TypeError(
      `Cannot encode event: expected an object, got ${describe(event)}`,
    );
  }
  const { event: name, data, id, retry } = event;
  if (name !== undefined) {
    if (name !== checkedName) checkName(name);
    if (data === undefined) {
      throw new TypeError(
        `Cannot encode event: \`event\` ${
          describe(name)
        } has no \`data\`, so clients would never dispatch it`,
      );
    }
  }
  if (id !== undefined) checkId(id);
  if (retry !== undefined) checkRetry(retry);
  // Each shape is one template literal: building the text field by field
  // made more strings per event, which the garbage collector paid for with
  // 50 busy connections (bench/README.md, loopback).
  if (data === undefined) {
    if (id === undefined && retry === undefined) {
      throw new TypeError(
        "Cannot encode event: it has none of `event`, `data`, `id` and `retry`",
      );
    }
    return `${id === undefined ? "" : `id: ${id}\n`}${
      retry === undefined ? "" : `retry: ${retry}\n`
    }\n`;
  }
  if (retry !== undefined || typeof data === "string") {
    // JSON never holds a raw line break, so only strings need splitting.
    return `${name === undefined ? "" : `event: ${name}\n`}${
      id === undefined ? "" : `id: ${id}\n`
    }${retry === undefined ? "" : `retry: ${retry}\n`}${
      typeof data === "string"
        ? encodeLines("data", data)
        : `data: ${stringifyData(data)}\n`
    }\n`;
  }
  if (name === undefined) {
    return id === undefined
      ? `data: ${stringifyData(data)}\n\n`
      : `id: ${id}\ndata: ${stringifyData(data)}\n\n`;
  }
  return id === undefined
    ? `event: ${name}\ndata: ${stringifyData(data)}\n\n`
    : `event: ${name}\nid: ${id}\ndata: ${stringifyData(data)}\n\n`;
}

/** Checks an event name, and remembers it as `checkedName` if it passes. */
function checkName(name: unknown): void {
  if (typeof name !== "string") {
    throw new TypeError(
      `Cannot encode event: \`event\` must be a string, got ${describe(name)}`,
    );
  }
  checkOneLine("Cannot encode event", "event", name);
  checkedName = name;
}

function checkId(id: unknown): void {
  if (typeof id === "number") {
    if (!Number.isFinite(id)) {
      throw new RangeError(
        `Cannot encode event: \`id\` must be a finite number, got ${id}`,
      );
    }
  } else if (typeof id !== "string") {
    throw new TypeError(
      `Cannot encode event: \`id\` must be a string or a number, got ${
        describe(id)
      }`,
    );
  } else {
    checkOneLine("Cannot encode event", "id", id, true);
  }
}

function checkRetry(retry: unknown): void {
  if (typeof retry !== "number") {
    throw new TypeError(
      `Cannot encode event: \`retry\` must be a number, got ${describe(retry)}`,
    );
  }
  checkInteger("Cannot encode event", "retry", retry, {
    rule: "a non-negative integer of milliseconds",
  });
}

/**
 * Encodes a comment: one `:` line per line of `text`. Clients ignore
 * comments; they keep a connection busy or carry notes for humans.
 *
 * @example
 * ```ts
 * import { encodeComment } from "./sse.ts";
 *
 * encodeComment("hello\nworld"); // ": hello\n: world\n"
 * encodeComment(); // ":\n"
 * ```
 */
export function encodeComment(text = ""): string {
  if (typeof text !== "string") {
    throw new TypeError(
      `Cannot encode comment: \`text\` must be a string, got ${describe(text)}`,
    );
  }
  return text === "" ? ":\n" : encodeLines("", text);
}

/**
 * Validates writer options and returns the response headers they make.
 * Internal to ssekit (a channel checks its clients' options once, up
 * front); not exported by `mod.ts`.
 */
export function checkWriterOptions(options: SseWriterOptions): Headers {
  const { keepAlive, highWaterMark, status } = options;
  if (
    keepAlive !== undefined &&
    !(typeof keepAlive === "number" && keepAlive >= 0 &&
      keepAlive <= MAX_TIMER_DELAY)
  ) {
    throw new RangeError(
      `Cannot create SseWriter: \`keepAlive\` must be 0 (off) or milliseconds up to ${MAX_TIMER_DELAY}, got ${
        describe(keepAlive)
      }`,
    );
  }
  if (highWaterMark !== undefined) {
    checkInteger("Cannot create SseWriter", "highWaterMark", highWaterMark);
  }
  if (
    status !== undefined &&
    !(Number.isInteger(status) && status >= 200 && status <= 599 &&
      !NULL_BODY_STATUSES.includes(status))
  ) {
    throw new RangeError(
      `Cannot create SseWriter: \`status\` must be an integer from 200 to 599 that allows a body, got ${
        describe(status)
      }`,
    );
  }
  const headers = new Headers(options.headers);
  for (const name of HOP_BY_HOP_HEADERS) {
    if (headers.has(name)) {
      throw new TypeError(
        `Cannot create SseWriter: \`headers\` must not set the hop-by-hop header "${name}"`,
      );
    }
  }
  const type = headers.get("content-type");
  if (type !== null && !/^text\/event-stream\s*(;|$)/i.test(type)) {
    throw new TypeError(
      `Cannot create SseWriter: \`headers\` sets content-type ${
        describe(type)
      }, but an event stream is "text/event-stream"`,
    );
  }
  if (type === null) {
    headers.set("content-type", "text/event-stream; charset=utf-8");
  }
  if (!headers.has("cache-control")) {
    headers.set("cache-control", "no-cache, no-transform");
  }
  headers.set("x-accel-buffering", "no");
  return headers;
}

function rejectClosed(): Promise<never> {
  const rejection = Promise.reject(new SseClosedError());
  // A client going away is routine: a producer that does not await its writes
  // must not crash the process with an unhandled rejection. Awaiting callers
  // still see the error.
  rejection.catch(() => {});
  return rejection;
}

/**
 * Internal to ssekit, for `channel.ts`; not exported by `mod.ts`. `send`
 * queues an event encoded once for many writers (the same bytes go to every
 * idle client), and hands it to a waiting client at once: the channel has
 * already waited for its producer to pause, once for all clients; `drop` ends a writer without delivering its queue; `onEnd`
 * sets the one function called when the writer ends, before `signal`
 * aborts (cheaper than a listener, for a channel of many clients); `sent`
 * is how many bytes the writer has handed to its stream.
 */
export const writerInternals = {} as {
  send(writer: SseWriter, text: string, bytes?: Uint8Array): Promise<void>;
  drop(writer: SseWriter): void;
  onEnd(writer: SseWriter, onEnd: () => void): void;
  sent(writer: SseWriter): number;
};

/**
 * Streams server-sent events to one client through the web-standard
 * `Response` it holds. Return `writer.response` from the handler, then write
 * events; the writer handles the rest:
 *
 * - **Delivery.** Events written while the client is busy are joined into
 *   one chunk that it gets when it next reads; a client that waits for data
 *   gets what was written as soon as the producer pauses (microtasks, not a
 *   timer: still within this turn of the event loop). A fast producer pays
 *   the per-chunk cost of the HTTP stack once per burst, not per event.
 * - **Backpressure.** `write()` resolves at once while the queued text is
 *   under `highWaterMark`; above it, the promise waits until the client has
 *   taken the queue, so a producer that awaits its writes holds at most
 *   about `highWaterMark` in memory, however slow the client.
 * - **Keep-alive.** After `keepAlive` ms with nothing sent, a `:` comment
 *   goes out. One shared timer serves every writer with the same period.
 * - **Closing.** The client disconnecting, `options.signal` aborting and
 *   `close()` all end the writer the same way, once: `closed` becomes true,
 *   `signal` aborts, keep-alive stops, and writes reject with
 *   {@linkcode SseClosedError}.
 *
 * @example A stream of ticks that stops when the client leaves
 * ```ts
 * import { SseWriter } from "./sse.ts";
 *
 * function handler(request: Request): Response {
 *   const writer = new SseWriter({ signal: request.signal });
 *   let i = 0;
 *   const timer = setInterval(() => {
 *     writer.write({ event: "tick", id: ++i, data: { i } });
 *     if (i === 3) writer.close();
 *   }, 1000);
 *   writer.signal.addEventListener("abort", () => clearInterval(timer));
 *   return writer.response;
 * }
 * ```
 *
 * @example What the client receives
 * ```ts
 * import { SseWriter } from "./sse.ts";
 *
 * const writer = new SseWriter();
 * await writer.write({ event: "greeting", data: "hello" });
 * writer.close();
 * await writer.response.text(); // "event: greeting\ndata: hello\n\n"
 * ```
 */
export class SseWriter {
  /**
   * The one response for this stream: status 200 (or `options.status`),
   * `content-type: text/event-stream; charset=utf-8`,
   * `cache-control: no-cache, no-transform` and `x-accel-buffering: no`,
   * plus `options.headers`.
   */
  readonly response: Response;
  static {
    writerInternals.send = (writer, text, bytes) =>
      writer.#send(text, bytes, true);
    writerInternals.drop = (writer) => writer.#end("drop");
    writerInternals.onEnd = (writer, onEnd) => writer.#onEnd = onEnd;
    writerInternals.sent = (writer) => writer.#sent;
  }

  static #keepAliveGroups = new Map<
    number,
    { writers: Set<SseWriter>; timer: ReturnType<typeof setInterval> }
  >();

  #controller!: ReadableStreamDefaultController<Uint8Array>;
  /** Made when `signal` is first asked for: many writers are never asked. */
  #abort: AbortController | undefined;
  #onEnd: (() => void) | undefined;
  #signal: AbortSignal | undefined;
  #keepAlive: number;
  #highWaterMark: number;
  /** Encoded events not yet handed to the client, joined as one string. */
  #queued = "";
  /** `#queued` as bytes, when it is one text that came with its bytes. */
  #queuedBytes: Uint8Array | undefined;
  /**
   * What a busy client has not read yet beyond `#queued`, oldest first,
   * encoded in parts of about `PART_SIZE` as the queue grows: a long burst
   * never becomes one string, and each part goes out as one chunk. Made
   * with the first part: most writers never need one.
   */
  #parts: { bytes: Uint8Array; units: number }[] | undefined;
  /** The text in `#parts`, in UTF-16 code units. */
  #partsUnits = 0;
  /** Queue length at the last look of `#deliverWhenIdle`; -1: none due. */
  #lastLook = -1;
  /** True while the client has asked for data that the writer did not have. */
  #waiting = false;
  #room: Resolvers<void> | undefined;
  /** When a chunk last went to the client (`Date.now()`), for keep-alive. */
  #lastSent = 0;
  /** Bytes handed to the stream so far. */
  #sent = 0;
  #started = false;
  #closed = false;

  /** Creates a writer; see {@linkcode SseWriterOptions} for the defaults. */
  constructor(options: SseWriterOptions = {}) {
    const headers = checkWriterOptions(options);
    this.#signal = options.signal;
    this.#keepAlive = options.keepAlive ?? DEFAULT_KEEP_ALIVE;
    this.#highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => this.#pull(),
      cancel: () => this.#end("gone"),
    }, { highWaterMark: 0 });
    this.response = new Response(body, {
      status: options.status ?? 200,
      headers,
    });
    const { signal } = options;
    if (signal?.aborted) {
      // Closing in a microtask lets the caller first add its listeners to
      // `writer.signal`, which then abort like any other time.
      queueMicrotask(this.#onAbort);
    } else {
      signal?.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  /**
   * Aborted once the stream has ended, for whatever reason. Hand it to the
   * timers, fetches and loops that produce events so they stop at once.
   */
  get signal(): AbortSignal {
    if (this.#abort === undefined) {
      this.#abort = new AbortController();
      if (this.#closed) this.#abort.abort();
    }
    return this.#abort.signal;
  }

  /** True once the stream has ended; writes then reject. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * How much encoded text is queued for a busy client, in UTF-16 code units
   * (bytes, for ASCII), as `WebSocket.bufferedAmount` counts bytes not yet
   * sent. `write()` waits while it is above `highWaterMark`.
   */
  get bufferedAmount(): number {
    return this.#partsUnits + this.#queued.length;
  }

  /**
   * Validates and queues one event. Throws at once, queueing nothing, for an
   * event that {@linkcode encodeEvent} rejects. The promise resolves when
   * there is room for more (see the class docs on backpressure) and rejects
   * with {@linkcode SseClosedError} once the writer is closed.
   */
  write(event: SseEvent): Promise<void> {
    return this.#send(encodeEvent(event));
  }

  /**
   * Queues a comment, one `:` line per line of `text`. Settles like
   * `write()`.
   */
  comment(text = ""): Promise<void> {
    return this.#send(encodeComment(text));
  }

  /**
   * Ends the stream once the events already queued are delivered. Calling it
   * again does nothing.
   */
  close(): void {
    this.#end("flush");
  }

  /**
   * Queues `text`; `bytes`, if given, is `text` already encoded. With `now`,
   * a waiting client gets it at once, without looking for more.
   */
  #send(text: string, bytes?: Uint8Array, now = false): Promise<void> {
    if (this.#closed) return rejectClosed();
    this.#queuedBytes = this.#queued === "" ? bytes : undefined;
    this.#queued += text;
    if (this.#waiting) {
      if (now) this.#deliver();
      else this.#deliverSoon();
      return RESOLVED;
    }
    if (this.#queued.length >= PART_SIZE) this.#seal();
    if (this.bufferedAmount <= this.#highWaterMark) return RESOLVED;
    if (this.#room === undefined) {
      this.#room = withResolvers<void>();
      this.#room.promise.catch(() => {}); // see rejectClosed()
    }
    return this.#room.promise;
  }

  /**
   * Delivers to the waiting client once the producer pauses: a microtask
   * looks again while the queue keeps growing, so that a burst of writes,
   * awaited or not, goes out as one chunk, still within this turn of the
   * event loop; or at once, when the queue is large enough.
   */
  #deliverSoon(): void {
    if (this.#partsUnits !== 0 || this.#queued.length >= CHUNK_SIZE) {
      this.#deliver();
    } else if (this.#lastLook === -1) {
      this.#lastLook = 0; // look twice: the producer may await this write
      queueMicrotask(this.#deliverWhenIdle);
    }
  }

  #deliverWhenIdle = (): void => {
    const length = this.#queued.length;
    if (this.#waiting && length !== this.#lastLook && length < CHUNK_SIZE) {
      this.#lastLook = length;
      queueMicrotask(this.#deliverWhenIdle);
      return;
    }
    this.#lastLook = -1;
    if (this.#waiting && length > 0) this.#deliver();
  };

  /**
   * Hands the client its oldest part, or else everything queued, as one
   * chunk; and makes room for a waiting producer once the queue is short.
   */
  #deliver(): void {
    this.#waiting = false;
    const part = this.#parts?.shift();
    if (part !== undefined) this.#partsUnits -= part.units;
    this.#enqueue(part?.bytes ?? this.#takeQueue());
    // If the client left inside enqueue(), `#end` rejected the room.
    const room = this.#room;
    if (room !== undefined && this.bufferedAmount <= this.#highWaterMark) {
      this.#room = undefined;
      room.resolve();
    }
  }

  /** Empties `#queued`; what it held, as bytes. */
  #takeQueue(): Uint8Array {
    const bytes = this.#queuedBytes ?? ENCODER.encode(this.#queued);
    this.#queued = "";
    this.#queuedBytes = undefined;
    return bytes;
  }

  /** Encodes the queued text as the newest part. */
  #seal(): void {
    const units = this.#queued.length;
    (this.#parts ??= []).push({ bytes: this.#takeQueue(), units });
    this.#partsUnits += units;
  }

  /**
   * Hands one chunk to the stream. Deno's server reads a response body with
   * an internal reader that takes the chunk inside `enqueue()`; if the
   * connection is gone, it cancels the stream right there, so the writer may
   * be closed when this returns (and a later `enqueue` or `close` would
   * throw). Every chunk goes through here, and nothing here throws.
   */
  #enqueue(chunk: Uint8Array): void {
    try {
      this.#controller.enqueue(chunk);
      this.#lastSent = Date.now();
      this.#sent += chunk.byteLength;
    } catch {
      this.#end("gone");
    }
  }

  /** The client reads: hand it everything queued, or wait for the next write. */
  #pull(): void {
    if (this.#closed) return;
    if (!this.#started) {
      // Keep-alive starts with the first read, so a writer whose response is
      // never sent holds no timer.
      this.#started = true;
      this.#lastSent = Date.now();
      if (this.#keepAlive > 0) SseWriter.#joinKeepAlive(this);
    }
    this.#waiting = true;
    if (this.bufferedAmount > 0) this.#deliverSoon();
  }

  #onAbort = (): void => this.#end("flush");

  /**
   * The one close path. `flush` delivers what is queued first; `drop` ends
   * the stream without it (a client too slow to keep); `gone` is for a client
   * that already left. It never throws: it runs in abort listeners, timers
   * and stream callbacks, where a throw would end the process.
   */
  #end(how: "flush" | "drop" | "gone"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiting = false;
    if (how === "flush" && this.#queued !== "") this.#seal();
    // Dropped or gone: what is queued is not worth encoding.
    const parts = this.#parts;
    this.#parts = undefined;
    this.#partsUnits = 0;
    this.#queued = "";
    this.#queuedBytes = undefined;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    SseWriter.#leaveKeepAlive(this);
    if (how !== "gone") {
      try {
        if (how === "flush" && parts !== undefined) {
          for (const part of parts) {
            this.#controller.enqueue(part.bytes);
            this.#sent += part.bytes.byteLength;
          }
        }
        this.#controller.close();
      } catch {
        // The stream was cancelled inside enqueue(): the client is gone.
      }
    }
    this.#room?.reject(new SseClosedError());
    this.#room = undefined;
    const onEnd = this.#onEnd;
    this.#onEnd = undefined;
    try {
      onEnd?.();
    } catch (error) {
      // Reported as a listener's error would be, without breaking the close.
      queueMicrotask(() => {
        throw error;
      });
    }
    this.#abort?.abort();
  }

  /** Sends a keep-alive comment if the client has waited `keepAlive` ms. */
  #keepAliveDue(now: number): void {
    if (!this.#waiting || now - this.#lastSent < this.#keepAlive) return;
    this.#waiting = false;
    this.#enqueue(KEEP_ALIVE_CHUNK);
  }

  // One timer per keep-alive period serves all writers with that period. It
  // ticks four times a period, so a comment follows between 1 and 1.25
  // periods of silence, and it stops when the last writer closes.
  static #joinKeepAlive(writer: SseWriter): void {
    const period = writer.#keepAlive;
    let group = SseWriter.#keepAliveGroups.get(period);
    if (group === undefined) {
      const writers = new Set<SseWriter>();
      const timer = setInterval(() => {
        const now = Date.now();
        for (const writer of writers) writer.#keepAliveDue(now);
      }, Math.max(1, period / 4));
      group = { writers, timer };
      SseWriter.#keepAliveGroups.set(period, group);
    }
    group.writers.add(writer);
  }

  static #leaveKeepAlive(writer: SseWriter): void {
    const group = SseWriter.#keepAliveGroups.get(writer.#keepAlive);
    if (group === undefined || !group.writers.delete(writer)) return;
    if (group.writers.size === 0) {
      clearInterval(group.timer);
      SseWriter.#keepAliveGroups.delete(writer.#keepAlive);
    }
  }
}

/** Options for {@linkcode sseResponse}. */
export interface SseResponseOptions extends SseWriterOptions {
  /**
   * Called with what `run` threw or rejected with, unless it only reports the
   * stream being closed. The client never sees it; its stream simply ends.
   *
   * @default {console.error}
   */
  onError?: (error: unknown) => void;
}

/**
 * Runs `run` with a new {@linkcode SseWriter} and returns its response. The
 * writer closes when `run` settles. If `run` fails, the error goes to
 * `options.onError`, never to the client; errors that only say the stream was
 * closed ({@linkcode SseClosedError}, or the abort of `writer.signal`) are
 * the normal end of a stream and are ignored.
 *
 * @example Three ticks, then the stream ends
 * ```ts
 * import { sseResponse } from "./sse.ts";
 *
 * const response = sseResponse(async (writer) => {
 *   for (let i = 1; i <= 3; i++) await writer.write({ id: i, data: i });
 * });
 * await response.text(); // "id: 1\ndata: 1\n\nid: 2\ndata: 2\n\nid: 3\ndata: 3\n\n"
 * ```
 */
export function sseResponse(
  run: (writer: SseWriter) => unknown,
  options: SseResponseOptions = {},
): Response {
  if (typeof run !== "function") {
    throw new TypeError(
      `Cannot create SSE response: \`run\` must be a function, got ${
        describe(run)
      }`,
    );
  }
  const { onError = console.error, ...writerOptions } = options;
  const writer = new SseWriter(writerOptions);
  (async () => {
    try {
      await run(writer);
    } catch (error) {
      const closing = error instanceof SseClosedError ||
        (writer.closed &&
          (error === writer.signal.reason ||
            (error as Error)?.name === "AbortError"));
      if (!closing) onError(error);
    } finally {
      writer.close();
    }
  })();
  return writer.response;
}

/**
 * The id of the last event a reconnecting client saw: its `Last-Event-ID`
 * header, or else a `lastEventId` query parameter (for clients that cannot
 * set headers). `undefined` on a first connection.
 *
 * Browsers send the header as UTF-8, and servers hand header values over one
 * byte per character (Latin-1), as the Fetch standard says: so `"é1"`
 * arrives as `"Ã©1"`. This function decodes such a value back to what the
 * client meant; a value that is not valid UTF-8 is returned as it came.
 * HTTP trims spaces and tabs around a header value, so an id that starts or
 * ends with one comes back without it.
 *
 * @example
 * ```ts
 * import { lastEventId } from "./sse.ts";
 *
 * const request = new Request("http://localhost/sse", {
 *   headers: { "last-event-id": "41" },
 * });
 * lastEventId(request); // "41"
 * lastEventId(new Request("http://localhost/sse")); // undefined
 * ```
 */
export function lastEventId(request: Request): string | undefined {
  const header = request.headers.get("last-event-id");
  if (header === null) {
    // Not `new URL(request.url)`: servers build that URL from the Host
    // header as it came, and a bad one would make it throw.
    const { url } = request;
    const start = url.indexOf("?");
    if (start === -1) return undefined;
    const end = url.indexOf("#", start);
    const query = url.slice(start + 1, end === -1 ? undefined : end);
    return new URLSearchParams(query).get("lastEventId") ?? undefined;
  }
  // Only bytes above 0x7f need decoding; a character above 0xff means the
  // runtime has decoded the value already.
  if (!NON_ASCII_BYTE.test(header) || ABOVE_BYTE.test(header)) return header;
  try {
    return UTF8.decode(Uint8Array.from(header, (c) => c.charCodeAt(0)));
  } catch {
    return header;
  }
}
