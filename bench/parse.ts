// The event-stream parser against eventsource-parser on the same bytes, in
// one run. Two streams (ssekit's ~92-byte tick, as bench/run.ts sends it,
// and LLM-style token deltas), each cut two ways (16 KiB chunks, as a busy
// ssekit stream arrives, and a chunk per event, as from a server that
// flushes every event), each read two ways:
//
// - feed: the parser alone. ssekit's is the one SseParseStream and
//   SseClient run (bytes in, a call per message); eventsource-parser's is
//   `createParser().feed()` after `TextDecoder.decode(chunk, { stream: true
//   })`, the usual way to give it bytes.
// - stream: `body.pipeThrough(new SseParseStream())` against
//   `.pipeThrough(new TextDecoderStream()).pipeThrough(new
//   EventSourceParserStream())`, the messages taken by a WritableStream.
//
// Events/s from the first chunk to the last message, median of the rounds
// after two warm-ups; each round runs both, back to back (alternating which
// goes first), and the ratio is the median of the rounds' ratios. Each run
// checks the last message it got.
//
//   deno run -A bench/parse.ts [--quick | --tiny]
//
// Prints a JSON line, then the markdown rows for bench/README.md.

import { createParser } from "eventsource-parser";
import { EventSourceParserStream } from "eventsource-parser/stream";
import { encodeEvent, type SseEvent } from "../mod.ts";
import { SseParseStream } from "../client.ts";
import { DEFAULT_MAX_EVENT_SIZE, EventStreamParser } from "../_parse.ts";

const SIZES = {
  full: { events: 100_000, rounds: 9 },
  quick: { events: 20_000, rounds: 5 },
  tiny: { events: 200, rounds: 1 },
};
const size = Deno.args.includes("--tiny")
  ? "tiny"
  : Deno.args.includes("--quick")
  ? "quick"
  : "full";
const { events, rounds } = SIZES[size];

const STREAMS: Record<string, (i: number) => SseEvent> = {
  ticks: (i) => ({
    event: "tick",
    id: i,
    data: { i, at: 1_700_000_000_000 + i, price: 101.25, symbol: "ACME" },
  }),
  tokens: (i) => ({
    data: {
      id: "chatcmpl-7",
      object: "chat.completion.chunk",
      choices: [{ index: 0, delta: { content: ` token${i}` } }],
    },
  }),
};
const CHUNKINGS = ["16 KiB chunks", "a chunk per event"] as const;
const MODES = ["feed", "stream"] as const;
const ENCODER = new TextEncoder();

function chunksOf(
  make: (i: number) => SseEvent,
  chunking: typeof CHUNKINGS[number],
): Uint8Array<ArrayBuffer>[] {
  const texts = Array.from({ length: events }, (_, i) => encodeEvent(make(i)));
  if (chunking === "a chunk per event") {
    return texts.map((text) => ENCODER.encode(text));
  }
  const bytes = ENCODER.encode(texts.join(""));
  const chunks = [];
  for (let i = 0; i < bytes.length; i += 16_384) {
    chunks.push(bytes.subarray(i, i + 16_384));
  }
  return chunks;
}

type Reader = (chunks: Uint8Array<ArrayBuffer>[]) => Promise<string>;

/** Each reader returns the last message's data, for the check. */
const READERS: Record<
  typeof MODES[number],
  { ssekit: Reader; "eventsource-parser": Reader }
> = {
  feed: {
    ssekit(chunks) {
      let last = "";
      const parser = new EventStreamParser((message) => {
        last = message.data;
      }, DEFAULT_MAX_EVENT_SIZE);
      for (const chunk of chunks) parser.feed(chunk);
      return Promise.resolve(last);
    },
    "eventsource-parser"(chunks) {
      let last = "";
      const decoder = new TextDecoder();
      const parser = createParser({
        onEvent(message) {
          last = message.data;
        },
      });
      for (const chunk of chunks) {
        parser.feed(decoder.decode(chunk, { stream: true }));
      }
      return Promise.resolve(last);
    },
  },
  stream: {
    ssekit: (chunks) =>
      drain(ReadableStream.from(chunks), new SseParseStream()),
    "eventsource-parser": (chunks) =>
      drain(
        ReadableStream.from(chunks).pipeThrough(new TextDecoderStream()),
        new EventSourceParserStream(),
      ),
  },
};

async function drain<T>(
  body: ReadableStream<T>,
  parse: TransformStream<T, { data: string }>,
): Promise<string> {
  let last = "";
  await body.pipeThrough(parse).pipeTo(
    new WritableStream({
      write(message) {
        last = message.data;
      },
    }),
  );
  return last;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const rows = [];
for (const [stream, make] of Object.entries(STREAMS)) {
  const expected = JSON.stringify(make(events - 1).data);
  for (const chunking of CHUNKINGS) {
    const chunks = chunksOf(make, chunking);
    for (const mode of MODES) {
      const times: Record<string, number[]> = {
        ssekit: [],
        "eventsource-parser": [],
      };
      const ratios = [];
      for (let r = -1; r <= rounds; r++) { // rounds -1 and 0 warm up
        // Alternate who goes first, so that neither always runs after the
        // other's garbage.
        const order = r % 2 === 0
          ? ["ssekit", "eventsource-parser"] as const
          : ["eventsource-parser", "ssekit"] as const;
        const round: Record<string, number> = {};
        for (const impl of order) {
          const start = performance.now();
          const last = await READERS[mode][impl](chunks);
          round[impl] = performance.now() - start;
          if (last !== expected) {
            throw new Error(`${impl} read ${last}, not ${expected}`);
          }
        }
        if (r < 1) continue;
        times.ssekit.push(round.ssekit);
        times["eventsource-parser"].push(round["eventsource-parser"]);
        // The two ran back to back: their ratio is what the machine's load
        // disturbs least.
        ratios.push(round["eventsource-parser"] / round.ssekit);
      }
      const ssekit = events / (median(times.ssekit) / 1000);
      const peer = events / (median(times["eventsource-parser"]) / 1000);
      rows.push({
        stream,
        chunking,
        mode,
        ssekitPerSecond: Math.round(ssekit),
        eventsourceParserPerSecond: Math.round(peer),
        ratio: Number(median(ratios).toFixed(2)),
      });
    }
  }
}

console.log(JSON.stringify({ size, events, rounds, rows }));
const format = (n: number) => n.toLocaleString("en-US");
for (const row of rows) {
  console.log(
    `| ${row.stream}, ${row.chunking} | ${row.mode} | ` +
      `${format(row.ssekitPerSecond)} | ` +
      `${format(row.eventsourceParserPerSecond)} | ${row.ratio.toFixed(2)}× |`,
  );
}
