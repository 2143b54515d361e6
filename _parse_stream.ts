// Internal to ssekit: the parser's public faces, a TransformStream and a
// function for a whole string. client.ts exports them.

import { describe } from "./_validate.ts";
import {
  checkMaxEventSize,
  EventStreamParser,
  type SseMessage,
  type SseParseOptions,
} from "./_parse.ts";

/**
 * Parses an event stream, bytes or text, into {@linkcode SseMessage}s,
 * exactly as a browser's `EventSource` reads one (the WHATWG "event stream
 * interpretation"): UTF-8 with one leading BOM dropped; lines ended by CR,
 * LF or CRLF, also when a CRLF is split between chunks; `field: value`,
 * with one space after the colon dropped; an `id` with NUL ignored; `retry`
 * only when it is all ASCII digits. A block without `data` dispatches
 * nothing (its `id` still counts), and an event cut off by the end of the
 * stream, before its blank line, is dropped.
 *
 * A line, or the data of one event, longer than `maxEventSize` errors the
 * stream with a `RangeError`: a server cannot make it hold text without
 * bound.
 *
 * @see {@link https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation}
 *
 * @example Read a fetched stream
 * ```ts
 * import { SseParseStream } from "./client.ts";
 *
 * const response = new Response("event: greeting\ndata: hello\n\n");
 * const messages = response.body!.pipeThrough(new SseParseStream());
 * for await (const message of messages) {
 *   message; // { type: "greeting", data: "hello", lastEventId: "" }
 * }
 * ```
 */
export class SseParseStream
  extends TransformStream<Uint8Array | string, SseMessage> {
  #parser: EventStreamParser;

  /** Creates the stream; see {@linkcode SseParseOptions} for the limit. */
  constructor(options: SseParseOptions = {}) {
    const max = checkMaxEventSize(
      "Cannot create SseParseStream",
      options?.maxEventSize,
    );
    let controller!: TransformStreamDefaultController<SseMessage>;
    const parser = new EventStreamParser(
      (message) => controller.enqueue(message),
      max,
    );
    super({
      start(started) {
        controller = started;
      },
      transform(chunk) {
        if (typeof chunk !== "string" && !(chunk instanceof Uint8Array)) {
          throw new TypeError(
            `Cannot parse event stream: a chunk must be a Uint8Array or a string, got ${
              describe(chunk)
            }`,
          );
        }
        parser.feed(chunk);
      },
      flush() {
        parser.end();
      },
    });
    this.#parser = parser;
  }

  /**
   * The last event id as of the last blank line parsed, also of a block
   * without data: what a client would send as `Last-Event-ID`.
   */
  get lastEventId(): string {
    return this.#parser.lastEventId;
  }

  /**
   * The reconnection time the stream asked for with its last valid `retry`
   * field, in milliseconds; `undefined` if it sent none.
   */
  get retry(): number | undefined {
    return this.#parser.retry;
  }
}

/**
 * Parses a whole event stream held in a string, as
 * {@linkcode SseParseStream} does. An event without its closing blank line
 * is not dispatched, as at the end of a stream.
 *
 * @example
 * ```ts
 * import { parseEvents } from "./client.ts";
 *
 * parseEvents("id: 1\ndata: a\ndata: b\n\nevent: done\ndata:\n\n");
 * // [
 * //   { type: "message", data: "a\nb", lastEventId: "1" },
 * //   { type: "done", data: "", lastEventId: "1" },
 * // ]
 * ```
 */
export function parseEvents(
  text: string,
  options: SseParseOptions = {},
): SseMessage[] {
  if (typeof text !== "string") {
    throw new TypeError(
      `Cannot parse events: \`text\` must be a string, got ${describe(text)}`,
    );
  }
  const messages: SseMessage[] = [];
  const parser = new EventStreamParser(
    (message) => messages.push(message),
    checkMaxEventSize("Cannot parse events", options?.maxEventSize),
  );
  parser.feed(text);
  parser.end();
  return messages;
}
