// The tests' one client for reading an event stream, in process (a body) or
// over HTTP (fetch): its text as it arrives, and the events parsed from it.
import { createParser, type EventSourceMessage } from "eventsource-parser";

const LATE = Symbol("late");

/**
 * Reads a stream of bytes as text, one chunk at a time, only when asked:
 * a client that does not read holds back its server, as a real one would.
 * `follow()` reads on without being asked. The text is parsed as it comes,
 * into `events`.
 */
export class StreamReader {
  /** The text of each chunk, in order. */
  readonly chunks: string[] = [];
  /** The events parsed so far, as EventSource would dispatch them. */
  readonly events: EventSourceMessage[] = [];
  /** When each of `events` arrived, as `Date.now()`. */
  readonly arrivals: number[] = [];
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  // Text exactly as sent: the parser drops a leading BOM (once, as the spec
  // says), where Deno's streaming decoder would also drop the one that starts
  // the first chunk after all-ASCII ones (tests/parse_test.ts).
  #decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  #parser = createParser({
    onEvent: (event) => {
      this.events.push(event);
      this.arrivals.push(Date.now());
    },
  });
  #reading?: Promise<string | undefined>;
  #following?: Promise<string>;

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.getReader();
  }

  /** Fetches `input` and reads its body (an event stream, over HTTP). */
  static async fetch(
    input: string | URL,
    init?: RequestInit,
  ): Promise<StreamReader> {
    const response = await fetch(input, init);
    return new StreamReader(response.body!);
  }

  /** Everything received so far. */
  get text(): string {
    return this.chunks.join("");
  }

  /** The blocks received whole so far, each without its blank line. */
  blocks(): string[] {
    return this.text.split("\n\n").slice(0, -1);
  }

  /**
   * What EventSource would send back as `Last-Event-ID`: the last id field,
   * also of a block without data.
   */
  lastId(): string | undefined {
    return [...this.text.matchAll(/^id: (.*)\n/gm)].at(-1)?.[1];
  }

  /**
   * The next chunk, or `undefined` at the end of the stream. Callers at the
   * same time wait for the same chunk.
   */
  next(): Promise<string | undefined> {
    return this.#reading ??= this.#read();
  }

  async #read(): Promise<string | undefined> {
    try {
      const { value, done } = await this.#reader.read();
      if (done) return undefined;
      const text = this.#decoder.decode(value, { stream: true });
      this.chunks.push(text);
      this.#parser.feed(text);
      return text;
    } finally {
      this.#reading = undefined;
    }
  }

  /**
   * Reads until `done()` holds, the stream ends, or `ms` milliseconds have
   * passed; whether it holds.
   */
  async waitFor(done: () => boolean, ms = Infinity): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = ms === Infinity ? undefined : new Promise<typeof LATE>(
      (resolve) => timer = setTimeout(() => resolve(LATE), ms),
    );
    try {
      while (!done()) {
        const next = this.next();
        const chunk = await (late ? Promise.race([next, late]) : next);
        if (chunk === undefined || chunk === LATE) return done();
      }
      return true;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads until the text received so far includes `needle`. */
  async until(needle: string): Promise<string> {
    if (!await this.waitFor(() => this.text.includes(needle))) {
      throw new Error(`Stream ended before ${JSON.stringify(needle)}`);
    }
    return this.text;
  }

  /**
   * Reads until `count` events have arrived, or the stream ends (by
   * default, to the end).
   */
  async take(count = Infinity): Promise<EventSourceMessage[]> {
    await this.waitFor(() => this.events.length >= count);
    return this.events;
  }

  /** Everything up to the end of the stream. */
  async rest(): Promise<string> {
    await this.waitFor(() => false);
    return this.text;
  }

  /**
   * Reads everything as it arrives from now on, as a browser would;
   * resolves with all the text at the end of the stream.
   */
  follow(): Promise<string> {
    return this.#following ??= this.rest();
  }

  /** Cancels the stream: the server sees the client leave. */
  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}
