// The implementations the benchmarks compare, behind one small interface:
// a sink is one client's stream, `write` pushes one event and resolves when
// the producer may go on, `close` ends the stream after what is queued.

import { Hono } from "hono";
import { type SSEStreamingApi, streamSSE } from "hono/streaming";
import { SseChannel, type SseEvent, SseWriter } from "../mod.ts";

/** One client's stream, as a server handler holds it. */
export interface Sink {
  readonly response: Response;
  write(event: SseEvent): Promise<void>;
  close(): void;
}

/**
 * Many clients fed the same events, for the fan-out scenario; with topics,
 * for the topic scenario (a client connected to a topic takes only its
 * events).
 */
export interface Fanout {
  connect(request: Request, topic?: string): Response;
  send(event: SseEvent, topic?: string): void;
  close(): void;
}

export interface Impl {
  /** What the tables call it. */
  label: string;
  open(request: Request): Sink;
  fanout(): Fanout;
}

/** The benchmark's event: a ~95-byte tick, as a price feed would send. */
export function tick(i: number): SseEvent {
  return {
    event: "tick",
    id: i,
    data: { i, at: 1_700_000_000_000 + i, price: 101.25, symbol: "ACME" },
  };
}

/** Bytes on the wire for ticks `first` to `last`, the same for every impl. */
export function tickBytes(first: number, last: number): number {
  let bytes = 0;
  for (let i = first; i <= last; i++) bytes += plainText(tick(i)).length;
  return bytes;
}

const ENCODER = new TextEncoder();
const RESOLVED = Promise.resolve();
const HIGH_WATER_MARK = 65_536;
/** What the coalesced baseline collects before it enqueues a chunk. */
const COALESCE_BYTES = 16_384;
const HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
};

/** A hand-written encoder: no validation, one template string. */
function plainText(event: SseEvent): string {
  const id = event.id === undefined ? "" : `id: ${event.id}\n`;
  return `event: ${event.event}\n${id}data: ${JSON.stringify(event.data)}\n\n`;
}

/**
 * The hand-written baseline: one `ReadableStream` chunk per event, a byte
 * high-water mark for `await write()`. `coalesce` joins events into chunks
 * of ~16 KiB instead, which is as fast as a stream can be fed, but holds
 * events back until a chunk is full: a throughput limit, not a design.
 */
class BaselineSink implements Sink {
  readonly response: Response;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #room: (() => void) | undefined;
  #text = "";
  #coalesce: boolean;
  #closed = false;
  onCancel: (() => void) | undefined;

  constructor(coalesce: boolean) {
    this.#coalesce = coalesce;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: () => this.#release(),
      cancel: () => {
        this.#closed = true;
        this.#release();
        this.onCancel?.();
      },
    }, { highWaterMark: HIGH_WATER_MARK, size: (chunk) => chunk.byteLength });
    this.response = new Response(body, { headers: HEADERS });
  }

  write(event: SseEvent): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("closed"));
    if (this.#coalesce) {
      this.#text += plainText(event);
      if (this.#text.length >= COALESCE_BYTES) this.#flush();
    } else {
      this.#controller.enqueue(ENCODER.encode(plainText(event)));
    }
    if (this.#controller.desiredSize! > 0) return RESOLVED;
    return new Promise((resolve) => this.#room = resolve);
  }

  /** Enqueues bytes shared with other sinks (fan-out). */
  enqueue(bytes: Uint8Array): void {
    if (!this.#closed) this.#controller.enqueue(bytes);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#flush();
    this.#controller.close();
    this.#release();
  }

  #flush(): void {
    if (this.#text === "") return;
    this.#controller.enqueue(ENCODER.encode(this.#text));
    this.#text = "";
  }

  #release(): void {
    const room = this.#room;
    this.#room = undefined;
    room?.();
  }
}

/**
 * Fan-out for the baselines: each event (or 16 KiB of them) encoded once.
 * An event to a topic is encoded once too, and found its clients by
 * walking all of them (as a channel without a topic index must).
 */
class BaselineFanout implements Fanout {
  #sinks = new Map<BaselineSink, string | undefined>();
  #text = "";
  #coalesce: boolean;

  constructor(coalesce: boolean) {
    this.#coalesce = coalesce;
  }

  connect(_request: Request, topic?: string): Response {
    const sink = new BaselineSink(false);
    this.#sinks.set(sink, topic);
    sink.onCancel = () => this.#sinks.delete(sink);
    return sink.response;
  }

  send(event: SseEvent, topic?: string): void {
    if (topic !== undefined) {
      this.#flush();
      const bytes = ENCODER.encode(plainText(event));
      for (const [sink, its] of this.#sinks) {
        if (its === undefined || its === topic) sink.enqueue(bytes);
      }
      return;
    }
    this.#text += plainText(event);
    if (!this.#coalesce || this.#text.length >= COALESCE_BYTES) this.#flush();
  }

  close(): void {
    this.#flush();
    for (const sink of this.#sinks.keys()) sink.close();
    this.#sinks.clear();
  }

  #flush(): void {
    if (this.#text === "") return;
    const bytes = ENCODER.encode(this.#text);
    this.#text = "";
    for (const sink of this.#sinks.keys()) sink.enqueue(bytes);
  }
}

/**
 * The least a stream can be, for the idle row: a `ReadableStream` that
 * enqueues each event as it is written, with no state of its own.
 */
class BareSink implements Sink {
  readonly response: Response;
  #controller!: ReadableStreamDefaultController<Uint8Array>;

  constructor() {
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
    });
    this.response = new Response(body, { headers: HEADERS });
  }

  write(event: SseEvent): Promise<void> {
    this.#controller.enqueue(ENCODER.encode(plainText(event)));
    return RESOLVED;
  }

  close(): void {
    this.#controller.close();
  }
}

class SsekitSink implements Sink {
  readonly response: Response;
  #writer: SseWriter;

  constructor(request: Request) {
    this.#writer = new SseWriter({ signal: request.signal });
    this.response = this.#writer.response;
  }

  write(event: SseEvent): Promise<void> {
    return this.#writer.write(event);
  }

  close(): void {
    this.#writer.close();
  }
}

class SsekitFanout implements Fanout {
  #channel = new SseChannel();

  connect(request: Request, topic?: string): Response {
    return this.#channel.connect(request, {
      topics: topic === undefined ? undefined : [topic],
    });
  }

  send(event: SseEvent, topic?: string): void {
    // The channel numbers its events itself.
    this.#channel.send({ event: event.event, data: event.data }, { topic });
  }

  close(): void {
    this.#channel.close();
  }
}

// Hono streams from a callback; the app hands the callback's stream back to
// whoever called `app.fetch` through `opened`.
let opened: { stream: SSEStreamingApi; finish: () => void } | undefined;
const hono = new Hono();
hono.get("*", (c) =>
  streamSSE(c, async (stream) => {
    let finish!: () => void;
    const done = new Promise<void>((resolve) => finish = resolve);
    stream.onAbort(finish);
    opened = { stream, finish };
    await done;
  }));

function honoMessage(event: SseEvent) {
  return {
    event: event.event,
    id: event.id === undefined ? undefined : String(event.id),
    data: JSON.stringify(event.data),
  };
}

class HonoSink implements Sink {
  readonly response: Response;
  readonly stream: SSEStreamingApi;
  #finish: () => void;

  constructor(request: Request) {
    const response = hono.fetch(request);
    if (!(response instanceof Response) || opened === undefined) {
      throw new Error("Hono answered asynchronously");
    }
    this.response = response;
    ({ stream: this.stream, finish: this.#finish } = opened);
    opened = undefined;
  }

  write(event: SseEvent): Promise<void> {
    return this.stream.writeSSE(honoMessage(event));
  }

  close(): void {
    this.#finish();
  }
}

/** Hono has no broadcast: each client's stream encodes each event. */
class HonoFanout implements Fanout {
  #sinks = new Set<HonoSink>();
  #last: Promise<void>[] = [];

  connect(request: Request): Response {
    const sink = new HonoSink(request);
    this.#sinks.add(sink);
    sink.stream.onAbort(() => {
      this.#sinks.delete(sink);
    });
    return sink.response;
  }

  send(event: SseEvent): void {
    this.#last = [];
    for (const sink of this.#sinks) this.#last.push(sink.write(event));
  }

  close(): void {
    // Closing before the last writes went through would drop them.
    const sinks = [...this.#sinks];
    Promise.all(this.#last).then(() => {
      for (const sink of sinks) sink.close();
    });
    this.#sinks.clear();
  }
}

export const IMPLS: Record<string, Impl> = {
  bare: {
    label: "bare ReadableStream",
    open: () => new BareSink(),
    fanout: () => {
      throw new Error("The bare stream is for the idle row only");
    },
  },
  baseline: {
    label: "per-event baseline",
    open: () => new BaselineSink(false),
    fanout: () => new BaselineFanout(false),
  },
  coalesced: {
    label: "coalesced baseline",
    open: () => new BaselineSink(true),
    fanout: () => new BaselineFanout(true),
  },
  ssekit: {
    label: "ssekit",
    open: (request) => new SsekitSink(request),
    fanout: () => new SsekitFanout(),
  },
  hono: {
    label: "hono streamSSE",
    open: (request) => new HonoSink(request),
    fanout: () => new HonoFanout(),
  },
};
