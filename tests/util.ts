// Helpers shared by the tests: a real server on an ephemeral loopback port,
// and ways to read a body as it streams.
import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { SseChannel } from "../mod.ts";

/** Serves `handler` on 127.0.0.1 for the length of `fn`, then shuts down. */
export async function withServer(
  handler: Deno.ServeHandler,
  fn: (url: URL) => Promise<void>,
): Promise<void> {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    handler,
  );
  try {
    await fn(new URL(`http://127.0.0.1:${server.addr.port}/`));
  } finally {
    await server.shutdown();
  }
}

/** Reads a stream of bytes as text, one chunk at a time. */
export class TextReader {
  readonly chunks: string[] = [];
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #decoder = new TextDecoder();

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.getReader();
  }

  /** The next chunk, or `undefined` at the end of the stream. */
  async next(): Promise<string | undefined> {
    const { value, done } = await this.#reader.read();
    if (done) return undefined;
    const text = this.#decoder.decode(value, { stream: true });
    this.chunks.push(text);
    return text;
  }

  /** Reads until the text received so far includes `needle`. */
  async until(needle: string): Promise<string> {
    while (!this.chunks.join("").includes(needle)) {
      if (await this.next() === undefined) {
        throw new Error(`Stream ended before ${JSON.stringify(needle)}`);
      }
    }
    return this.chunks.join("");
  }

  /** Everything up to the end of the stream. */
  async rest(): Promise<string> {
    while (await this.next() !== undefined);
    return this.chunks.join("");
  }

  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A timer that can be cancelled, for bounding a wait without a leak. */
export function deadline(
  ms: number,
): { reached: Promise<"deadline">; cancel(): void } {
  let timer: ReturnType<typeof setTimeout>;
  let settle: (value: "deadline") => void;
  const reached = new Promise<"deadline">((resolve) => {
    settle = resolve;
    timer = setTimeout(() => resolve("deadline"), ms);
  });
  return {
    reached,
    cancel() {
      clearTimeout(timer);
      settle("deadline");
    },
  };
}

/** Resolves when `signal` aborts (at once if it already has). */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
}

/**
 * A client of one channel, its stream parsed as it arrives. `lastId()` is
 * what EventSource would send back as `Last-Event-ID`: the last id field,
 * also of a block without data.
 */
export function listen(channel: SseChannel, last?: string, topics?: string[]): {
  events: EventSourceMessage[];
  done: Promise<void>;
  raw(): string;
  lastId(): string | undefined;
  leave(): Promise<void>;
} {
  const headers: HeadersInit = last === undefined
    ? {}
    : { "last-event-id": last };
  const request = new Request("http://x/", { headers });
  const reader = channel.connect(request, { topics }).body!.getReader();
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  const decoder = new TextDecoder();
  let raw = "";
  const done = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const text = decoder.decode(value, { stream: true });
      raw += text;
      parser.feed(text);
    }
  })();
  return {
    events,
    done,
    raw: () => raw,
    lastId: () => [...raw.matchAll(/^id: (.*)\n/gm)].at(-1)?.[1],
    async leave() {
      await delay(0); // take what was sent
      await reader.cancel();
      await done;
    },
  };
}

/** Resolves with `promise`, or rejects after `ms` milliseconds. */
export async function within<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: not within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
