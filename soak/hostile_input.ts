// Hostile input: the real demo process under a seeded fuzz run of raw,
// often malformed HTTP requests over TCP. Whatever comes in, the demo must
// answer without a 5xx, keep running, log no error, write only well-formed
// event streams, and still serve normal clients afterwards. Deno's HTTP
// server answers some garbage itself (400, 431) or closes the socket: that
// is fine, and counted.

import { createParser } from "eventsource-parser";
import { equals, format, type Report, type Scenario } from "./_util.ts";
import { exchange, type Outcome, startDemo } from "./_fuzz_http.ts";
import { type HostileRequest, RequestFuzzer } from "./_fuzz_requests.ts";
import { Rng, soakSeed } from "./_fuzz_rng.ts";
import { checkWire } from "./_fuzz_wire.ts";

/** Requests in flight at once. */
const CONCURRENCY = 16;
/** How long to wait for an answer, and for one to a request left unfinished. */
const TIMEOUT_MS = 3000;
const INCOMPLETE_TIMEOUT_MS = 400;
/** How long an event stream is read, and how much of any body. */
const STREAM_MS = 300;
const MAX_BODY = 262_144;

/** The content type of a 2xx answer from each route. */
const ROUTE_TYPES: Record<string, RegExp> = {
  "/": /^text\/html/,
  "/broadcast": /^text\/html/,
  "/ticks.js": /^text\/javascript/,
  "/broadcast.js": /^text\/javascript/,
  "/style.css": /^text\/css/,
  "/favicon.svg": /^image\/svg\+xml/,
  "/sse": /^text\/event-stream/,
  "/broadcast/events": /^text\/event-stream/,
  "/broadcast/messages": /^application\/json/,
};

/** Tallies by request kind. */
interface Tally {
  sent: number;
  statuses: Map<number, number>;
  /** Outcomes other than a response: closed, reset, timeout, early-close. */
  other: Map<string, number>;
}

function bump<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function showCounts<K>(map: Map<K, number>): string {
  return [...map].sort(([a], [b]) => String(a) < String(b) ? -1 : 1)
    .map(([key, n]) => `${key}: ${format(n)}`).join(", ") || "none";
}

/** Reads an event stream with fetch and eventsource-parser until `done`. */
async function readEvents(
  response: Response,
  done: (events: { event: string; data: string; id: string }[]) => boolean,
  ms: number,
): Promise<
  {
    events: { event: string; data: string; id: string }[];
    wire: Uint8Array;
    retry?: number;
  }
> {
  const events: { event: string; data: string; id: string }[] = [];
  let lastId = "";
  let retry: number | undefined;
  const parser = createParser({
    onId: (id) => lastId = id,
    onRetry: (value) => retry = value,
    onEvent: ({ event, data }) =>
      events.push({ event: event ?? "message", data, id: lastId }),
  });
  const decoder = new TextDecoder();
  const reader = response.body!.getReader();
  const chunks: Uint8Array[] = [];
  const timer = setTimeout(() => reader.cancel().catch(() => {}), ms);
  try {
    for (;;) {
      const { value, done: end } = await reader.read().catch(() => ({
        value: undefined,
        done: true as const,
      }));
      if (end) break;
      chunks.push(value);
      parser.feed(decoder.decode(value, { stream: true }));
      if (done(events)) break;
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => {});
  }
  const wire = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    wire.set(c, offset);
    offset += c.length;
  }
  return { events, wire, retry };
}

/** A normal `GET /sse?count=3&intervalMs=10`: connected, 3 ticks, complete. */
async function normalStream(port: number): Promise<string> {
  const response = await fetch(
    `http://127.0.0.1:${port}/sse?count=3&intervalMs=10`,
  );
  if (response.status !== 200) {
    await response.body?.cancel();
    return `status ${response.status}`;
  }
  const { events, wire, retry } = await readEvents(response, () => false, 5000);
  const wireCheck = checkWire(wire, true);
  if (wireCheck.violationCount > 0) return wireCheck.violations.join("; ");
  const shape = events.map((e) => `${e.event}${e.event === "tick" ? e.id : ""}`)
    .join(",");
  if (shape !== "connected,tick1,tick2,tick3,complete") return `got ${shape}`;
  if (retry !== 2000) return `retry ${retry}`;
  const ticks = events.slice(1, 4).map((e) => JSON.parse(e.data).i).join(",");
  return ticks === "1,2,3" ? "ok" : `tick data ${ticks}`;
}

/** A normal broadcast: a client joins, a POST's message reaches it. */
async function normalBroadcast(port: number, seed: number): Promise<string> {
  const origin = `http://127.0.0.1:${port}`;
  const stream = await fetch(`${origin}/broadcast/events`);
  if (stream.status !== 200) {
    await stream.body?.cancel();
    return `events status ${stream.status}`;
  }
  const text = `after the fuzz, seed ${seed}: ok ✓`;
  const reading = readEvents(
    stream,
    (events) =>
      events.some((e) =>
        e.event === "message" && JSON.parse(e.data).text === text
      ),
    5000,
  );
  const posted = await fetch(`${origin}/broadcast/messages`, {
    method: "POST",
    headers: { "content-type": "text/plain; charset=utf-8" },
    body: text,
  });
  const answer = await posted.text();
  if (posted.status !== 201) return `POST status ${posted.status}: ${answer}`;
  const postedId: string = JSON.parse(answer).id;
  const { events, wire } = await reading;
  const wireCheck = checkWire(wire, false);
  if (wireCheck.violationCount > 0) return wireCheck.violations.join("; ");
  const message = events.find((e) => e.event === "message");
  if (message === undefined) return "the message never arrived";
  if (message.id !== postedId) return `id ${message.id}, POST said ${postedId}`;
  return "ok";
}

const hostileInput: Scenario = async ({ short, log }) => {
  const started = performance.now();
  const seed = soakSeed();
  log(`hostile-input: seed ${seed} (SOAK_SEED=${seed} to repeat)`);
  const total = short ? 600 : 5000;
  const deadline = Date.now() + (short ? 18_000 : 240_000);
  const fuzzer = new RequestFuzzer(new Rng(seed));
  const demo = await startDemo();
  const { port } = demo;

  // The channel's epoch, so that some ids look like the channel's own.
  const first = await exchange({
    port,
    pieces: [{
      bytes: new TextEncoder().encode(
        "GET /broadcast/events HTTP/1.1\r\nHost: x\r\n\r\n",
      ),
    }],
    timeoutMs: TIMEOUT_MS,
    streamMs: 200,
    maxBody: 4096,
  });
  const epochMatch = /^id: ([0-9a-z]{6})-\d+\n/.exec(
    new TextDecoder().decode(first.body ?? new Uint8Array()),
  );
  fuzzer.epoch = epochMatch?.[1];

  // One broadcast client stays connected through the whole fuzz: its stream
  // (client counts, the messages that got through) must stay well formed.
  const watcher = await fetch(`http://127.0.0.1:${port}/broadcast/events`);
  const watched = readEvents(watcher, () => false, (short ? 30 : 300) * 1000);

  const tallies = new Map<string, Tally>();
  const statuses = new Map<number, number>();
  const others = new Map<string, number>();
  const serverErrors: string[] = [];
  const malformed: string[] = [];
  const streamFaults: string[] = [];
  const cut = new Map<string, number>();
  const slow: string[] = [];
  const confused: string[] = [];
  let confusedCount = 0;
  let serverErrorCount = 0;
  let malformedCount = 0;
  let streamFaultCount = 0;
  let streams = 0;
  let completeStreams = 0;
  let blocks = 0;
  let sent = 0;
  let done = 0;

  const record = (request: HostileRequest, outcome: Outcome) => {
    let tally = tallies.get(request.kind);
    if (tally === undefined) {
      tally = { sent: 0, statuses: new Map(), other: new Map() };
      tallies.set(request.kind, tally);
    }
    tally.sent++;
    if (outcome.kind !== "response") {
      bump(tally.other, outcome.kind);
      bump(others, outcome.kind);
      if (outcome.kind === "timeout" && !request.incomplete) {
        slow.push(request.label);
      }
      return;
    }
    if (outcome.status === undefined || outcome.malformed) {
      malformedCount++;
      if (malformed.length < 5) {
        malformed.push(`${request.label}: ${outcome.malformed}`);
      }
      if (outcome.status === undefined) return;
    }
    const status = outcome.status!;
    bump(tally.statuses, status);
    bump(statuses, status);
    if (status >= 500) {
      serverErrorCount++;
      if (serverErrors.length < 5) {
        const body = new TextDecoder().decode(outcome.body?.subarray(0, 200));
        serverErrors.push(`${status} for ${request.label}: ${body.trim()}`);
      }
    }
    if (outcome.cut) bump(cut, request.kind);
    const type = outcome.headers?.get("content-type") ?? "";
    const expected = request.route && ROUTE_TYPES[request.route];
    if (status < 300 && expected && !expected.test(type)) {
      confusedCount++;
      if (confused.length < 5) {
        confused.push(`${request.label}: ${status} ${type}`);
      }
    }
    if (/text\/event-stream/i.test(type)) {
      streams++;
      const complete = outcome.bodyComplete === true && !outcome.cut;
      if (complete) completeStreams++;
      const wire = checkWire(outcome.body!, complete);
      blocks += wire.blocks;
      if (wire.violationCount > 0) {
        streamFaultCount++;
        if (streamFaults.length < 5) {
          streamFaults.push(`${request.label}: ${wire.violations[0]}`);
        }
      }
    }
  };

  const worker = async () => {
    while (sent < total && Date.now() < deadline && demo.alive()) {
      sent++;
      const request = fuzzer.next();
      const outcome = await exchange({
        port,
        pieces: request.pieces,
        earlyClose: request.earlyClose,
        closeWrite: request.closeWrite,
        head: request.head,
        timeoutMs: request.incomplete ? INCOMPLETE_TIMEOUT_MS : TIMEOUT_MS,
        streamMs: STREAM_MS,
        maxBody: MAX_BODY,
      });
      record(request, outcome);
      if (++done % 500 === 0) log(`hostile-input: ${done} requests done`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  log(`hostile-input: ${sent} requests done; normal clients next`);

  const alive = demo.alive();
  const stream = alive ? await normalStream(port) : "the demo is gone";
  const broadcast = alive
    ? await normalBroadcast(port, seed)
    : "the demo is gone";
  // Ends the watcher (its body is cancelled) and checks what it read.
  demo.proc.kill("SIGINT");
  const status = await Promise.race([
    demo.proc.exited,
    new Promise<undefined>((resolve) =>
      setTimeout(() => resolve(undefined), 5000)
    ),
  ]);
  if (status === undefined) await demo.proc.stop();
  const watch = await watched;
  const watchCheck = checkWire(watch.wire, false);

  const lines = demo.proc.lines;
  const errorLines = lines.filter((line) =>
    /Uncaught|panicked|^error:/i.test(line) || /^\S+ ERROR /.test(line)
  );
  // An exception that Deno.serve caught (it answers 500) prints its stack.
  const traces = lines.filter((line) => /^[A-Za-z]*Error\b/.test(line));
  const warnLines = lines.filter((line) => /^\S+ WARN /.test(line)).length;

  const figures: Record<string, string> = {
    "seed": `${seed} (SOAK_SEED=${seed} to repeat)`,
    "requests sent": `${format(sent)} of ${format(total)}`,
    "responses by status": showCounts(statuses),
    "no response": `${
      showCounts(others)
    } (closed: the server closed the socket without a response; reset: it reset the connection; timeout: none within ${TIMEOUT_MS} ms, or ${INCOMPLETE_TIMEOUT_MS} ms for a request left unfinished on purpose; early-close: we left first)`,
    "event streams checked": `${format(streams)} (${
      format(completeStreams)
    } read to their end, the rest for ${STREAM_MS} ms), ${
      format(blocks)
    } event blocks`,
    "long-lived broadcast client": `${format(watch.events.length)} events, ${
      format(watch.wire.length)
    } bytes`,
    "timeouts on finished requests": slow.length === 0
      ? "none"
      : `${slow.length}: ${slow.slice(0, 3).join("; ")}`,
    "bodies cut by the server, by kind": `${
      showCounts(cut)
    } (Deno's server takes a half-close for a client that left)`,
    "demo log": `${format(lines.length)} lines, ${format(warnLines)} at WARN`,
  };
  for (const [kind, tally] of [...tallies].sort()) {
    const parts = [showCounts(tally.statuses)];
    if (tally.other.size > 0) parts.push(showCounts(tally.other));
    figures[`kind ${kind}`] = `${format(tally.sent)} sent; ${parts.join("; ")}`;
  }
  if (serverErrors.length > 0) figures["first 5xx"] = serverErrors.join(" | ");
  if (malformed.length > 0) figures["first malformed"] = malformed.join(" | ");
  if (confused.length > 0) {
    figures["first route confusions"] = confused.join(" | ");
  }
  if (streamFaults.length > 0) {
    figures["first malformed streams"] = streamFaults.join(" | ");
  }
  if (traces.length > 0) {
    figures["first exceptions logged"] = [...new Set(traces)].slice(0, 3)
      .join(" | ");
  }
  if (errorLines.length > 0) {
    figures["first error lines"] = errorLines.slice(0, 3).join(" | ");
  }

  const report: Report = {
    scenario: "hostile-input",
    summary: `${
      format(sent)
    } hostile raw requests, ${CONCURRENCY} at a time, to the demo process`,
    seconds: (performance.now() - started) / 1000,
    figures,
    checks: [
      equals("responses with a 5xx status", serverErrorCount, 0),
      equals("responses with broken HTTP framing", malformedCount, 0),
      equals("malformed event streams", streamFaultCount, 0),
      equals(
        "the long-lived broadcast stream stayed well formed",
        watchCheck.violationCount === 0,
        true,
      ),
      equals("the demo was still running after the fuzz", alive, true),
      equals(
        "demo log lines with Uncaught or at ERROR",
        errorLines.length,
        0,
      ),
      equals("exceptions logged by the demo (stack traces)", traces.length, 0),
      equals(
        "2xx answers whose content type is not the requested route's",
        confusedCount,
        0,
      ),
      equals(
        "a normal GET /sse?count=3&intervalMs=10 after the fuzz",
        stream,
        "ok",
      ),
      equals(
        "a normal broadcast POST and /broadcast/events after the fuzz",
        broadcast,
        "ok",
      ),
    ],
  };
  return report;
};

export default hostileInput;
