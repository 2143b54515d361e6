// A minimal HTTP/1.1 client on raw TCP, run in its own process by
// `scenario.ts`: `fetch` costs more per chunk than the servers measured, and
// 10,000 sockets need a process of their own under a 20,000 open-file limit.
//
//   stream   --conns=C --rounds=R   C connections at once, each read to the
//                                   end of its chunked body; per round, the
//                                   time to the last byte and what came.
//   idle     --stages=2000,10000    opens connections until each stage's
//                                   count has its first event, prints
//                                   `{"ready":n}`, waits for a stdin line.
//   latency  --streams=N --count=K  N SSE connections (`/sse/0` ...); per
//            --warm-up=W            sample, for each in turn, a `GET
//                                   /ping/k` on one more connection, and the
//                                   time until the event it triggers on k.
//
// Prints one JSON object per line on stdout.

import { parseArgs } from "node:util";

const { values: args, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    port: { type: "string" },
    conns: { type: "string", default: "1" },
    rounds: { type: "string", default: "1" },
    stages: { type: "string", default: "" },
    count: { type: "string", default: "100" },
    "warm-up": { type: "string", default: "0" },
    streams: { type: "string", default: "1" },
  },
});
const mode = positionals[0];
const port = Number(args.port);

const ENCODER = new TextEncoder();
const REQUEST = (path: string) =>
  ENCODER.encode(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
const CR = 13, LF = 10;

function print(value: unknown): void {
  console.log(JSON.stringify(value));
}

/**
 * Reads one response: the head, then a chunked body, counting its bytes and
 * chunks. `onData` sees each slice of body bytes.
 */
class ChunkedReader {
  bodyBytes = 0;
  chunks = 0;
  done = false;
  status = 0;
  #head = "";
  #inHead = true;
  /** Bytes left in the current chunk; -1 while reading a size line. */
  #left = -1;
  #size = "";
  /** Bytes of the CRLF after a chunk's data still to skip. */
  #trailer = 0;
  #onData: ((bytes: Uint8Array) => void) | undefined;

  constructor(onData?: (bytes: Uint8Array) => void) {
    this.#onData = onData;
  }

  feed(buffer: Uint8Array): void {
    let i = 0;
    if (this.#inHead) {
      const end = indexOfHeadEnd(buffer);
      const text = new TextDecoder().decode(
        buffer.subarray(0, end === -1 ? buffer.length : end + 4),
      );
      this.#head += text;
      if (end === -1) return;
      this.#inHead = false;
      this.status = Number(this.#head.slice(9, 12));
      if (!/^transfer-encoding: *chunked/im.test(this.#head)) {
        throw new Error(`Expected a chunked body:\n${this.#head}`);
      }
      i = end + 4;
    }
    while (i < buffer.length && !this.done) {
      if (this.#trailer > 0) {
        i++;
        this.#trailer--;
      } else if (this.#left === -1) {
        const byte = buffer[i++];
        if (byte === LF) {
          const size = parseInt(this.#size, 16);
          this.#size = "";
          if (size === 0) {
            this.done = true; // no trailers from these servers
          } else {
            this.#left = size;
            this.chunks++;
          }
        } else if (byte !== CR) {
          this.#size += String.fromCharCode(byte);
        }
      } else {
        const take = Math.min(this.#left, buffer.length - i);
        this.#onData?.(buffer.subarray(i, i + take));
        this.bodyBytes += take;
        this.#left -= take;
        i += take;
        if (this.#left === 0) {
          this.#left = -1;
          this.#trailer = 2;
        }
      }
    }
  }
}

function indexOfHeadEnd(buffer: Uint8Array): number {
  for (let i = 0; i + 3 < buffer.length; i++) {
    if (
      buffer[i] === CR && buffer[i + 1] === LF && buffer[i + 2] === CR &&
      buffer[i + 3] === LF
    ) return i;
  }
  return -1;
}

/** Counts event terminators (`\n\n`) across slices. */
class EventCounter {
  events = 0;
  /** The byte before this slice was an LF that ends no event. */
  #lf = false;
  feed = (bytes: Uint8Array): void => {
    let last = this.#lf ? -1 : -2;
    for (
      let at = bytes.indexOf(LF);
      at !== -1;
      at = bytes.indexOf(LF, at + 1)
    ) {
      if (last === at - 1) {
        this.events++;
        last = -2;
      } else {
        last = at;
      }
    }
    this.#lf = bytes.length === 0 ? this.#lf : last === bytes.length - 1;
  };
}

async function readToEnd(path: string): Promise<ChunkedReader> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    conn.setNoDelay(true);
    await conn.write(REQUEST(path));
    const reader = new ChunkedReader();
    const buffer = new Uint8Array(256 * 1024);
    while (!reader.done) {
      const n = await conn.read(buffer);
      if (n === null) throw new Error("Connection closed before the end");
      reader.feed(buffer.subarray(0, n));
    }
    return reader;
  } finally {
    conn.close();
  }
}

async function stream(): Promise<void> {
  const conns = Number(args.conns);
  for (let round = 0; round < Number(args.rounds); round++) {
    const start = performance.now();
    const readers = await Promise.all(
      Array.from({ length: conns }, (_, i) => readToEnd(`/stream/${i}`)),
    );
    const ms = performance.now() - start;
    print({
      ms,
      status: readers.map((r) => r.status),
      bodyBytes: readers.map((r) => r.bodyBytes),
      chunks: readers.map((r) => r.chunks),
    });
  }
}

interface Open {
  conn: Deno.Conn;
  reading: Promise<void>;
}

/** Opens an SSE connection and resolves once its first event arrived. */
async function openIdle(): Promise<Open> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(REQUEST("/idle"));
  const counter = new EventCounter();
  const reader = new ChunkedReader(counter.feed);
  const buffer = new Uint8Array(1024);
  let first!: () => void;
  const firstEvent = new Promise<void>((resolve) => first = resolve);
  const reading = (async () => {
    try {
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) break;
        reader.feed(buffer.subarray(0, n));
        if (counter.events > 0) first();
      }
    } catch {
      // closed by us
    }
    first();
  })();
  await firstEvent;
  return { conn, reading };
}

async function idle(): Promise<void> {
  const stages = args.stages.split(",").map(Number);
  const open: Open[] = [];
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream())
    .getReader();
  let input = "";
  for (const target of stages) {
    while (open.length < target) {
      const batch = Math.min(200, target - open.length);
      open.push(...await Promise.all(Array.from({ length: batch }, openIdle)));
    }
    print({ ready: open.length });
    while (!input.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) break;
      input += value;
    }
    input = input.slice(input.indexOf("\n") + 1);
  }
  for (const { conn } of open) conn.close();
  await Promise.all(open.map((o) => o.reading));
  lines.releaseLock();
  print({ closed: open.length });
}

async function latency(): Promise<void> {
  const streams = Number(args.streams);
  const ping = await Deno.connect({ hostname: "127.0.0.1", port });
  ping.setNoDelay(true);
  const buffer = new Uint8Array(64 * 1024);
  const sse = [];
  for (let k = 0; k < streams; k++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    await conn.write(REQUEST(`/sse/${k}`));
    const counter = new EventCounter();
    const reader = new ChunkedReader(counter.feed);
    const untilEvents = async (events: number) => {
      while (counter.events < events) {
        const n = await conn.read(buffer);
        if (n === null) throw new Error("The event stream closed");
        reader.feed(buffer.subarray(0, n));
      }
    };
    await untilEvents(1);
    sse.push({ conn, untilEvents });
  }
  const samples: number[][] = sse.map(() => []);
  const pings = sse.map((_, k) => REQUEST(`/ping/${k}`));
  const pingBuffer = new Uint8Array(4096);
  const decoder = new TextDecoder();
  const warmUp = Number(args["warm-up"]);
  for (let i = 0; i < warmUp + Number(args.count); i++) {
    // Each stream in turn, starting with another one each sample.
    for (let j = 0; j < streams; j++) {
      const k = (i + j) % streams;
      const start = performance.now();
      await ping.write(pings[k]);
      await sse[k].untilEvents(i + 2);
      if (i >= warmUp) samples[k].push(performance.now() - start);
      // The ping's own answer: a 204 with no body.
      let head = "";
      while (!head.includes("\r\n\r\n")) {
        const n = await ping.read(pingBuffer);
        if (n === null) throw new Error("The ping connection closed");
        head += decoder.decode(pingBuffer.subarray(0, n));
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }
  for (const { conn } of sse) conn.close();
  ping.close();
  print({ samples });
}

if (mode === "stream") await stream();
else if (mode === "idle") await idle();
else if (mode === "latency") await latency();
else throw new Error(`Unknown mode ${mode}`);
