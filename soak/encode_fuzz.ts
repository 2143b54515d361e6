// Encode fuzz: random events made of nasty characters, each pushed through
// the three ways ssekit puts an event on the wire: `encodeEvent`, one
// `SseWriter` read in process, and one `SseChannel` served by Deno.serve and
// read over HTTP. Each event must be rejected at the call, by a TypeError or
// RangeError that names the field, or read back identical by an independent
// parser (eventsource-parser, fed random cuts of the bytes), and, for the
// channel, by Deno's own EventSource.

import {
  encodeEvent,
  SseChannel,
  SseClosedError,
  type SseEvent,
  SseWriter,
} from "../mod.ts";
import { delay, equals, format, type Report, type Scenario } from "./_util.ts";
import {
  badFields,
  expectObservations,
  type Field,
  loneSurrogateInName,
  namesField,
  type Observation,
  randomEvent,
} from "./_fuzz_events.ts";
import { Matcher, SplitReader, type SplitStats } from "./_fuzz_reader.ts";
import { Rng, soakSeed } from "./_fuzz_rng.ts";

/** Events sent between two sentinels, the points where the readers catch up. */
const BATCH = 500;
/** How long the readers may take to catch up with a batch. */
const CATCH_UP_MS = 15_000;

const ENCODER = new TextEncoder();

/** What happened to events at one path's call. */
interface Calls {
  accepted: number;
  /** Rejections by the field the message names first, and the error type. */
  rejected: Map<string, number>;
  /** Rejected though the model says valid. */
  unexpectedRejections: number;
  /** Accepted though the model says invalid. */
  unexpectedAcceptances: number;
  /** Rejections whose error is of the wrong type or names no bad field. */
  unnamed: number;
  /** Accepted with a lone surrogate in `event` or `id`. */
  loneSurrogates: number;
  examples: string[];
}

function newCalls(): Calls {
  return {
    accepted: 0,
    rejected: new Map(),
    unexpectedRejections: 0,
    unexpectedAcceptances: 0,
    unnamed: 0,
    loneSurrogates: 0,
    examples: [],
  };
}

/** An event, short enough for a figure. */
function show(event: SseEvent): string {
  const text = JSON.stringify(
    event,
    (_, v) =>
      typeof v === "bigint"
        ? `${v}n`
        : typeof v === "function"
        ? "<function>"
        : typeof v === "symbol"
        ? v.toString()
        : typeof v === "number" && !Number.isFinite(v)
        ? String(v)
        : Object.is(v, -0)
        ? "-0"
        : v,
  );
  return text === undefined
    ? String(event)
    : text.length > 120
    ? `${text.slice(0, 117)}...`
    : text;
}

/**
 * Records one call's outcome against the model: `error` is what it threw,
 * or undefined if it accepted the event. Returns whether it accepted it.
 */
function judge(
  calls: Calls,
  path: string,
  event: SseEvent,
  bad: Field[],
  error: unknown,
): boolean {
  const note = (message: string) => {
    if (calls.examples.length < 3) {
      calls.examples.push(`${path}: ${message} for ${show(event)}`);
    }
  };
  if (error === undefined) {
    calls.accepted++;
    if (bad.length > 0) {
      calls.unexpectedAcceptances++;
      note(`accepted, though ${bad.map((f) => `\`${f}\``).join(", ")} is bad`);
    }
    if (loneSurrogateInName(event)) calls.loneSurrogates++;
    return true;
  }
  if (error instanceof SseClosedError) throw error; // the path itself broke
  const message = (error as Error)?.message ?? String(error);
  const named = /`(event|data|id|retry)`/.exec(message)?.[1] ?? "no field";
  const key = `${(error as Error)?.name ?? "?"} \`${named}\``;
  calls.rejected.set(key, (calls.rejected.get(key) ?? 0) + 1);
  if (bad.length === 0) {
    calls.unexpectedRejections++;
    note(`rejected a valid event: ${message}`);
    return false;
  }
  const ok = namesField(error, bad);
  if (ok !== true) {
    calls.unnamed++;
    note(ok);
  }
  return false;
}

/** The id an event goes out with, if it brings its own. */
function ownId(event: SseEvent): string | undefined {
  return event.id === undefined ? undefined : String(event.id);
}

function showRejections(calls: Calls): string {
  return [...calls.rejected].sort(([, a], [, b]) => b - a)
    .map(([key, n]) => `${key} ${format(n)}`).join(", ");
}

function showSplits(stats: SplitStats): string {
  return `${format(stats.bytes)} bytes in ${
    format(stats.pieces)
  } pieces; cuts inside a CRLF ${
    format(stats.insideCrlf)
  }, inside a UTF-8 character ${format(stats.insideUtf8)}, before a BOM ${
    format(stats.beforeBom)
  }`;
}

/** Reads a byte stream into `reader` until it ends. */
async function pump(
  body: ReadableStream<Uint8Array>,
  reader: SplitReader,
): Promise<void> {
  try {
    for await (const chunk of body) reader.push(chunk);
  } catch {
    // Cancelled at the end.
  }
  reader.end();
}

const encodeFuzz: Scenario = async ({ short, log }) => {
  const started = performance.now();
  const seed = soakSeed();
  log(`encode-fuzz: seed ${seed} (SOAK_SEED=${seed} to repeat)`);
  const total = short ? 10_000 : 100_000;
  const deadline = Date.now() + (short ? 18_000 : 240_000);
  const rng = new Rng(seed);

  // The model's expectations and each reader's comparison, per path.
  const encodeLf = new Matcher("encodeEvent");
  const encodeCrlf = new Matcher("encodeEvent, LF as CRLF");
  const writerMatch = new Matcher("SseWriter");
  const httpMatch = new Matcher("SseChannel over HTTP");
  const sourceMatch = new Matcher("EventSource", true);
  const readerLf = new SplitReader(
    new Rng(seed + 1),
    (o) => encodeLf.actual(o),
  );
  const readerCrlf = new SplitReader(
    new Rng(seed + 2),
    (o) => encodeCrlf.actual(o),
  );
  const writerReader = new SplitReader(
    new Rng(seed + 3),
    (o) => writerMatch.actual(o),
  );
  const httpReader = new SplitReader(
    new Rng(seed + 4),
    (o) => httpMatch.actual(o),
  );

  // (2) One writer, its response body read in process.
  const writer = new SseWriter({ keepAlive: 0 });
  const writerDone = pump(writer.response.body!, writerReader);

  // (3) One channel served over HTTP, read by fetch and by EventSource.
  const channel = new SseChannel();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => channel.connect(request),
  );
  const url = `http://127.0.0.1:${server.addr.port}/`;
  const response = await fetch(url);
  const httpDone = pump(response.body!, httpReader);
  const source = new EventSource(url);
  let sourceErrors = 0;
  await new Promise<void>((resolve, reject) => {
    source.onopen = () => resolve();
    source.onerror = () => reject(new Error("EventSource could not connect"));
  });
  // An event named "error" comes to onerror too, as a MessageEvent.
  source.onerror = (event) => {
    if (!(event instanceof MessageEvent)) sourceErrors++;
  };
  // EventSource dispatches each type to its own listeners: one per type.
  const onMessage = (event: Event) => {
    if (!(event instanceof MessageEvent)) return; // a real `error` event
    sourceMatch.actual({
      kind: "event",
      type: event.type,
      data: event.data,
      id: event.lastEventId,
    });
  };
  const listening = new Set<string>();
  const listen = (type: string) => {
    if (listening.has(type)) return;
    listening.add(type);
    source.addEventListener(type, onMessage);
  };
  for (let i = 0; channel.size < 2 && i < 100; i++) await delay(20);

  const calls = { encode: newCalls(), writer: newCalls(), channel: newCalls() };
  /** Valid for encodeEvent, rejected by SseChannel: only `id`, no other field. */
  let channelIdOnly = 0;
  let idFaults = 0;
  const idExamples: string[] = [];
  let disagreements = 0;
  const disagreementExamples: string[] = [];
  let writerLastId = "";
  let encodeLastId = "";
  let channelSent = 0;
  let epoch: string | undefined;
  let events = 0;
  let stalled = "";
  let pending = ""; // encodeEvent's text of this batch, not yet read

  const expect = (matchers: Matcher[], observations: Observation[]) => {
    for (const o of observations) for (const m of matchers) m.expect(o);
  };

  /** Sends one event down every path and records what to expect. */
  const sendAll = (event: SseEvent, writes: Promise<void>[]) => {
    const bad = badFields(event);
    let text: string | undefined;
    let error: unknown;
    try {
      text = encodeEvent(event);
    } catch (e) {
      error = e;
    }
    const encoded = judge(calls.encode, "encodeEvent", event, bad, error);
    if (encoded) {
      const observations: Observation[] = [];
      encodeLastId = expectObservations(
        event,
        encodeLastId,
        ownId(event),
        observations,
      );
      expect([encodeLf, encodeCrlf], observations);
      pending += text!;
    }

    error = undefined;
    try {
      writes.push(writer.write(event));
    } catch (e) {
      error = e;
    }
    const written = judge(calls.writer, "SseWriter.write", event, bad, error);
    if (written) {
      const observations: Observation[] = [];
      writerLastId = expectObservations(
        event,
        writerLastId,
        ownId(event),
        observations,
      );
      expect([writerMatch], observations);
    }

    error = undefined;
    let id: string | undefined;
    try {
      id = channel.send(event);
    } catch (e) {
      error = e;
    }
    const { event: name, data, retry } = event;
    const idOnly = bad.length === 0 && event.id !== undefined &&
      name === undefined && data === undefined && retry === undefined;
    let sent: boolean;
    if (idOnly && error !== undefined) {
      // A known difference, reported on its own rather than as a fault.
      channelIdOnly++;
      sent = false;
    } else sent = judge(calls.channel, "SseChannel.send", event, bad, error);
    if (sent) {
      channelSent++;
      // Ids the channel draws must count every event sent, and only those.
      if (event.id === undefined) {
        const match = /^([0-9a-z]{6})-(\d+)$/.exec(id!);
        epoch ??= match?.[1];
        if (
          match === null || match[1] !== epoch ||
          Number(match[2]) !== channelSent
        ) {
          idFaults++;
          if (idExamples.length < 3) {
            idExamples.push(`${id} for the ${channelSent}th event sent`);
          }
        }
      } else if (id !== String(event.id)) {
        idFaults++;
        if (idExamples.length < 3) {
          idExamples.push(`${id} for an event with id ${String(event.id)}`);
        }
      }
      const observations: Observation[] = [];
      expectObservations(event, "", id, observations);
      expect([httpMatch], observations);
      for (const o of observations) {
        if (o.kind !== "event") continue;
        listen(o.type);
        sourceMatch.expect(o);
      }
    }
    if (!(encoded === written && (written === sent || idOnly))) {
      disagreements++;
      if (disagreementExamples.length < 3) {
        disagreementExamples.push(
          `encodeEvent ${encoded}, SseWriter ${written}, SseChannel ${sent} for ${
            show(event)
          }`,
        );
      }
    }
  };

  let batches = 0;
  while (events < total && Date.now() < deadline) {
    const writes: Promise<void>[] = [];
    const size = Math.min(BATCH, total - events);
    for (let i = 0; i < size; i++) sendAll(randomEvent(rng), writes);
    events += size;
    sendAll({ event: "sentinel", data: `batch ${++batches}` }, writes);
    readerLf.push(ENCODER.encode(pending));
    readerCrlf.push(ENCODER.encode(pending.replaceAll("\n", "\r\n")));
    pending = "";
    await Promise.all(writes);
    // The readers catch up with the batch before the next one goes out.
    const until = Date.now() + CATCH_UP_MS;
    while (
      (writerMatch.pending > 0 || httpMatch.pending > 0 ||
        sourceMatch.pending > 0) && Date.now() < until
    ) await delay(2);
    if (writerMatch.pending + httpMatch.pending + sourceMatch.pending > 0) {
      stalled =
        `after batch ${batches}: SseWriter ${writerMatch.pending}, HTTP ${httpMatch.pending}, EventSource ${sourceMatch.pending} events not read`;
      break;
    }
    if (batches % 20 === 0) log(`encode-fuzz: ${format(events)} events`);
  }

  // Every path must still take and deliver a plain event after all that.
  const last = { event: "last", data: "the end", id: "end" };
  sendAll(last, []);
  readerLf.push(ENCODER.encode(pending));
  readerCrlf.push(ENCODER.encode(pending.replaceAll("\n", "\r\n")));
  readerLf.end();
  readerCrlf.end();
  writer.close();
  const until = Date.now() + CATCH_UP_MS;
  while (sourceMatch.pending > 0 && Date.now() < until) await delay(5);
  source.close();
  channel.close();
  await Promise.all([writerDone, httpDone]);
  await server.shutdown();

  const matchers = [encodeLf, encodeCrlf, writerMatch, httpMatch, sourceMatch];
  const c = calls;
  const figures: Record<string, string> = {
    "seed": `${seed} (SOAK_SEED=${seed} to repeat)`,
    "events": `${format(events)} random events in ${
      format(batches)
    } batches, then one plain event`,
    "encodeEvent": `${format(c.encode.accepted)} accepted; rejected: ${
      showRejections(c.encode)
    }`,
    "SseWriter.write": `${format(c.writer.accepted)} accepted; rejected: ${
      showRejections(c.writer)
    }`,
    "SseChannel.send": `${format(c.channel.accepted)} accepted; rejected: ${
      showRejections(c.channel)
    }`,
    "EventSource sample": `every event of the channel (${
      format(sourceMatch.matched + sourceMatch.bomDropped)
    } dispatched, ${
      format(listening.size)
    } event types listened to), ${sourceErrors} errors`,
    "EventSource: a U+FEFF dropped (Deno's EventSource drops one that starts its first chunk after all-ASCII ones)":
      format(sourceMatch.bomDropped),
    "cuts, encodeEvent": showSplits(readerLf.stats),
    "cuts, encodeEvent as CRLF": showSplits(readerCrlf.stats),
    "cuts, SseWriter": showSplits(writerReader.stats),
    "cuts, SseChannel over HTTP": showSplits(httpReader.stats),
    "library bug: SseChannel.send rejects an event with only an `id`, which encodeEvent accepts, saying it has none of the fields":
      format(channelIdOnly),
  };
  const examples = [
    ...matchers.flatMap((m) => m.examples),
    ...c.encode.examples,
    ...c.writer.examples,
    ...c.channel.examples,
    ...disagreementExamples,
    ...idExamples,
  ];
  if (examples.length > 0) {
    figures["first faults"] = examples.slice(0, 6).join(" | ");
  }
  if (stalled) figures["stalled"] = stalled;

  const sum = (f: (calls: Calls) => number) =>
    f(c.encode) + f(c.writer) + f(c.channel);
  const report: Report = {
    scenario: "encode-fuzz",
    summary: `${
      format(events)
    } nasty events through encodeEvent, an SseWriter and an SseChannel over HTTP`,
    seconds: (performance.now() - started) / 1000,
    figures,
    checks: [
      equals(
        "events read back differently (all readers)",
        matchers.reduce((n, m) => n + m.mismatches, 0),
        0,
      ),
      equals(
        "rejections that are not a TypeError or RangeError naming a bad field",
        sum((x) => x.unnamed),
        0,
      ),
      equals("valid events rejected", sum((x) => x.unexpectedRejections), 0),
      equals("invalid events accepted", sum((x) => x.unexpectedAcceptances), 0),
      equals(
        "accepted events with a lone surrogate in `event` or `id`",
        sum((x) => x.loneSurrogates),
        0,
      ),
      equals(
        "events that the three paths judged differently (but id-only, above)",
        disagreements,
        0,
      ),
      equals("channel ids that skip or repeat a count", idFaults, 0),
      equals("all readers caught up with every batch", stalled || "yes", "yes"),
      ...matchers.map((m) =>
        equals(
          `${m.name}: every accepted event read back, in order`,
          `${format(m.matched + m.bomDropped)} of ${format(m.total)}`,
          `${format(m.total)} of ${format(m.total)}`,
        )
      ),
      equals("EventSource errors", sourceErrors, 0),
    ],
  };
  return report;
};

export default encodeFuzz;
