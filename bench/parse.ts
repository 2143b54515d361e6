// The event-stream parser against eventsource-parser on the same bytes, in
// one run. Three streams (ssekit's ~92-byte tick, as bench/run.ts sends it,
// LLM-style token deltas, and the same in Chinese, so that no chunk is all
// ASCII), each cut two ways (16 KiB chunks, as a busy ssekit stream arrives,
// and a chunk per event, as from a server that flushes every event), each
// read two ways:
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
//   deno run -A bench/parse.ts [--quick | --tiny] [--runs=N [--together]]
//     [--row=I]
//
// Prints a JSON line, then the markdown rows for bench/README.md: of every
// row, measured in this process one after the other, or of row I alone
// (`--row=I`, from 0, in the order printed). With `--runs=N` it runs itself
// N times and prints each ratio's median over the runs and their range (the
// ratios move more between processes than between rounds). Each run measures
// each row in a process of its own, since what a process ran before moves a
// row, even the floor's (bench/README.md, "Parser"). With `--together`, each
// run is one process that measures every row in turn, as without `--runs`.
// ("builtins alone" is cut for ASCII bytes: it does not hold back a UTF-8
// sequence cut at the end of a chunk. So it does not read the third stream,
// token deltas in Chinese, whose chunks the parsers decode as text that is
// not all ASCII.)

import { createParser } from "eventsource-parser";
import { EventSourceParserStream } from "eventsource-parser/stream";
import { encodeEvent, type SseEvent } from "../mod.ts";
import { type SseMessage, SseParseStream } from "../client.ts";
import { DEFAULT_MAX_EVENT_SIZE, EventStreamParser } from "../_parse.ts";
import { median } from "./_stats.ts";

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

/**
 * The event type each ASCII stream uses, which "builtins alone" skips by
 * length; a stream not here is not ASCII, and has no floor.
 */
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
  "Chinese tokens": (i) => ({
    data: {
      id: "chatcmpl-7",
      object: "chat.completion.chunk",
      choices: [{ index: 0, delta: { content: `第${i}个词` } }],
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

interface Row {
  stream: string;
  chunking: string;
  mode: string;
  ssekitPerSecond: number | null;
  eventsourceParserPerSecond: number | null;
  builtinsAlonePerSecond: number | null;
  ratio: number;
  builtinsAloneRatio: number | null;
}

/** The rows, in the order they are measured and printed. */
const ROWS = Object.keys(STREAMS).flatMap((stream) =>
  CHUNKINGS.flatMap((chunking) =>
    MODES.map((mode) => ({ stream, chunking, mode }))
  )
);

/** The rows `wanted`, measured in this process in the order of ROWS. */
async function measure(wanted: typeof ROWS): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [stream, make] of Object.entries(STREAMS)) {
    const expected = JSON.stringify(make(events - 1).data);
    for (const chunking of CHUNKINGS) {
      const modes = MODES.filter((mode) =>
        wanted.some((row) =>
          row.stream === stream && row.chunking === chunking &&
          row.mode === mode
        )
      );
      if (modes.length === 0) continue;
      const chunks = chunksOf(make, chunking);
      const floor = stream in TYPES;
      const impls = floor
        ? IMPLS
        : IMPLS.filter((impl) => impl !== "builtins alone");
      for (const mode of modes) {
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
          const first = (r + 3) % impls.length;
          const order = [...impls.slice(first), ...impls.slice(0, first)];
          const round = {} as Record<Impl, number>;
          for (const impl of order) {
            const start = performance.now();
            const last = await READERS[mode][impl](chunks, TYPES[stream] ?? "");
            round[impl] = performance.now() - start;
            if (last !== expected) {
              throw new Error(`${impl} read ${last}, not ${expected}`);
            }
          }
          if (r < 1) continue;
          for (const impl of impls) times[impl].push(round[impl]);
          // They ran back to back: their ratios are what the machine's load
          // disturbs least.
          ratios.push(round["eventsource-parser"] / round.ssekit);
          if (floor) {
            floorRatios.push(
              round["eventsource-parser"] / round["builtins alone"],
            );
          }
        }
        const perSecond = (impl: Impl) =>
          times[impl].length === 0
            ? null
            : Math.round(events / (median(times[impl]) / 1000));
        rows.push({
          stream,
          chunking,
          mode,
          ssekitPerSecond: perSecond("ssekit"),
          eventsourceParserPerSecond: perSecond("eventsource-parser"),
          builtinsAlonePerSecond: perSecond("builtins alone"),
          ratio: Number(median(ratios).toFixed(2)),
          builtinsAloneRatio: floorRatios.length === 0
            ? null
            : Number(median(floorRatios).toFixed(2)),
        });
      }
    }
  }
  return rows;
}

/**
 * `--runs=N`: this file's own runs, N of them; a run is a process for each
 * entry of `processes`, run with those arguments, and the rows they print.
 */
async function spawnRuns(
  count: number,
  processes: string[][],
): Promise<Row[][]> {
  const spawn = async (extra: string[]) => {
    const { success, stdout } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        ...(size === "full" ? [] : [`--${size}`]),
        ...extra,
      ],
      stderr: "inherit",
    }).output();
    if (!success) throw new Error(`bench/parse.ts ${extra.join(" ")} failed`);
    const [json] = new TextDecoder().decode(stdout).split("\n");
    return JSON.parse(json).rows as Row[];
  };
  const runs = [];
  for (let run = 0; run < count; run++) {
    const rows = [];
    for (const extra of processes) rows.push(...await spawn(extra));
    runs.push(rows);
    console.error(`run ${run + 1} of ${count} done`);
  }
  return runs;
}

const format = (n: number | null) => n?.toLocaleString("en-US") ?? "–";
const times = (n: number | null) => n === null ? "–" : `${n.toFixed(2)}×`;
/** The median of `values` and their range, or dashes when there are none. */
const spread = (values: (number | null)[]) => {
  const known = values.filter((v): v is number => v !== null);
  if (known.length === 0) return "– | –";
  const [low, high] = [Math.min(...known), Math.max(...known)];
  return `${times(median(known))} | ${low.toFixed(2)}–${times(high)}`;
};

const runsArg = Deno.args.find((arg) => arg.startsWith("--runs="))?.slice(7);
const runs = runsArg === undefined ? undefined : Number(runsArg);
if (runs !== undefined && !(Number.isInteger(runs) && runs >= 1)) {
  throw new RangeError(`--runs must be a whole number from 1, got ${runsArg}`);
}
const rowArg = Deno.args.find((arg) => arg.startsWith("--row="))?.slice(6);
const only = rowArg === undefined ? undefined : Number(rowArg);
if (
  only !== undefined &&
  !(Number.isInteger(only) && only >= 0 && only < ROWS.length)
) {
  throw new RangeError(
    `--row must be a whole number from 0 to ${ROWS.length - 1}, got ${rowArg}`,
  );
}
const together = Deno.args.includes("--together");
if (together && runs === undefined) {
  throw new TypeError("--together goes with --runs=N");
}
const indexes = only === undefined ? ROWS.map((_, i) => i) : [only];
if (runs === undefined) {
  const rows = await measure(indexes.map((i) => ROWS[i]));
  console.log(JSON.stringify({ size, events, rounds, rows }));
  for (const row of rows) {
    console.log(
      `| ${row.stream}, ${row.chunking} | ${row.mode} | ` +
        `${format(row.ssekitPerSecond)} | ` +
        `${format(row.eventsourceParserPerSecond)} | ${times(row.ratio)} | ` +
        `${times(row.builtinsAloneRatio)} |`,
    );
  }
} else {
  // One process for each row, or with --together one for them all.
  const all = await spawnRuns(
    runs,
    together
      ? [only === undefined ? [] : [`--row=${only}`]]
      : indexes.map((i) => [`--row=${i}`]),
  );
  const rows = all[0].map((row, i) => ({
    stream: row.stream,
    chunking: row.chunking,
    mode: row.mode,
    ratios: all.map((run) => run[i].ratio),
    builtinsAloneRatios: all.map((run) => run[i].builtinsAloneRatio),
  }));
  console.log(JSON.stringify({ size, events, rounds, runs, together, rows }));
  for (const row of rows) {
    console.log(
      `| ${row.stream}, ${row.chunking} | ${row.mode} | ` +
        `${spread(row.ratios)} | ${spread(row.builtinsAloneRatios)} |`,
    );
  }
}
