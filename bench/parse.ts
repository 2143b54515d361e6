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
// A third reader, "builtins alone", is a floor rather than a parser: it
// makes only the calls that ssekit's parser cannot avoid (TextDecoder.decode
// per chunk, indexOf to find the end of each line whose value a message
// keeps, slice for that value, an object per message), is told the stream's
// layout instead of checking it, and skips an `event:` line by the length of
// the type it knows. No correct parser built on those builtins can beat it,
// so its ratio to eventsource-parser is the most such a parser can reach.
//
// Events/s from the first chunk to the last message, median of the rounds
// after two warm-ups; each round runs all three, back to back (rotating which
// goes first), and each ratio is the median of the rounds' ratios. Each run
// checks the last message it got.
//
//   deno run -A bench/parse.ts [--quick | --tiny]
//
// Prints a JSON line, then the markdown rows for bench/README.md.
// ("builtins alone" is cut for ASCII bytes, as these streams are: it does not
// hold back a UTF-8 sequence cut at the end of a chunk.)

import { createParser } from "eventsource-parser";
import { EventSourceParserStream } from "eventsource-parser/stream";
import { encodeEvent, type SseEvent } from "../mod.ts";
import { type SseMessage, SseParseStream } from "../client.ts";
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

/** The event type each stream uses, which "builtins alone" skips by length. */
const TYPES: Record<string, string> = { ticks: "tick", tokens: "" };

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

const IMPLS = ["ssekit", "eventsource-parser", "builtins alone"] as const;
type Impl = typeof IMPLS[number];

/**
 * The floor described above: a feed for the chunks, in order, of an LF-only
 * ASCII stream whose only event type is `type`; it calls `dispatch` with
 * each message.
 */
function builtinsAlone(
  type: string,
  dispatch: (message: SseMessage) => void,
): (chunk: Uint8Array<ArrayBuffer>) => void {
  const decoder = new TextDecoder();
  const eventLine = "event: ".length + type.length; // up to its LF
  let rest = ""; // the start of a line that the next chunk ends
  let id = "";
  let eventType = "message";
  /** One line that is not blank, from `pos` to `end` of `text`. */
  const line = (text: string, pos: number, end: number) => {
    const first = text.charCodeAt(pos);
    if (first === 101) { // `event: <type>`
      eventType = type;
    } else if (first === 100) { // `data: <value>`, the blank line next
      dispatch({
        type: eventType,
        data: text.slice(pos + 6, end),
        lastEventId: id,
      });
      eventType = "message";
    } else { // `id: <value>`
      id = text.slice(pos + 4, end);
    }
  };
  return (chunk) => {
    const text = decoder.decode(chunk);
    let pos = 0;
    if (rest !== "") {
      const end = text.indexOf("\n"); // a line is shorter than a chunk
      const whole = rest + text.slice(0, end);
      line(whole, 0, whole.length);
      pos = end + 1;
    }
    while (pos < text.length) {
      const first = text.charCodeAt(pos);
      if (first === 10) { // a blank line
        pos++;
      } else if (first === 101 && pos + eventLine < text.length) {
        eventType = type;
        pos += eventLine + 1;
      } else {
        const end = text.indexOf("\n", pos);
        if (end === -1) break;
        line(text, pos, end);
        pos = end + 1;
      }
    }
    rest = text.slice(pos);
  };
}

/** Each reader returns the last message's data, for the check. */
const READERS: Record<
  typeof MODES[number],
  Record<
    Impl,
    (chunks: Uint8Array<ArrayBuffer>[], type: string) => Promise<string>
  >
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
    "builtins alone"(chunks, type) {
      let last = "";
      const feed = builtinsAlone(type, (message) => {
        last = message.data;
      });
      for (const chunk of chunks) feed(chunk);
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
    "builtins alone": (chunks, type) => {
      let feed!: (chunk: Uint8Array<ArrayBuffer>) => void;
      return drain(
        ReadableStream.from(chunks),
        new TransformStream({
          start(controller) {
            feed = builtinsAlone(
              type,
              (message) => controller.enqueue(message),
            );
          },
          transform(chunk) {
            feed(chunk);
          },
        }),
      );
    },
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
      const times: Record<Impl, number[]> = {
        ssekit: [],
        "eventsource-parser": [],
        "builtins alone": [],
      };
      const ratios: number[] = [];
      const floorRatios: number[] = [];
      for (let r = -1; r <= rounds; r++) { // rounds -1 and 0 warm up
        // Rotate who goes first, so that none always runs after another's
        // garbage.
        const first = (r + 3) % IMPLS.length;
        const order = [...IMPLS.slice(first), ...IMPLS.slice(0, first)];
        const round = {} as Record<Impl, number>;
        for (const impl of order) {
          const start = performance.now();
          const last = await READERS[mode][impl](chunks, TYPES[stream]);
          round[impl] = performance.now() - start;
          if (last !== expected) {
            throw new Error(`${impl} read ${last}, not ${expected}`);
          }
        }
        if (r < 1) continue;
        for (const impl of IMPLS) times[impl].push(round[impl]);
        // They ran back to back: their ratios are what the machine's load
        // disturbs least.
        ratios.push(round["eventsource-parser"] / round.ssekit);
        floorRatios.push(
          round["eventsource-parser"] / round["builtins alone"],
        );
      }
      const perSecond = (impl: Impl) =>
        Math.round(events / (median(times[impl]) / 1000));
      rows.push({
        stream,
        chunking,
        mode,
        ssekitPerSecond: perSecond("ssekit"),
        eventsourceParserPerSecond: perSecond("eventsource-parser"),
        builtinsAlonePerSecond: perSecond("builtins alone"),
        ratio: Number(median(ratios).toFixed(2)),
        builtinsAloneRatio: Number(median(floorRatios).toFixed(2)),
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
      `${format(row.eventsourceParserPerSecond)} | ${
        row.ratio.toFixed(2)
      }× | ` +
      `${row.builtinsAloneRatio.toFixed(2)}× |`,
  );
}
