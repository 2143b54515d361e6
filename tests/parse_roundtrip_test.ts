// Random events, encoded by ssekit and served over HTTP by SseWriter and by
// SseChannel, read back three ways: by SseParseStream (over the network as
// it came, and again cut at random, inside CRLFs and UTF-8 sequences), by
// eventsource-parser, and by Deno's own EventSource. The parser must give
// exactly what was sent; the three must agree.
import assert from "node:assert/strict";
import fc from "fast-check";
import { createParser } from "eventsource-parser";
import { encodeEvent, SseChannel, type SseEvent, SseWriter } from "../mod.ts";
import { parseEvents, type SseMessage, SseParseStream } from "../client.ts";
import { within, withServer } from "./util.ts";

const SPECIAL = [
  "\n",
  "\r",
  "\r\n",
  "\0",
  " ",
  ":",
  "é",
  "😀",
  "\u2028",
  "\ufeff",
];
const text = fc.string({
  unit: fc.oneof(
    fc.constantFrom(...SPECIAL),
    fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
  ),
  maxLength: 16,
}).filter((s) => s.isWellFormed());

/** Events that encodeEvent accepts: the others never reach the wire. */
const events = fc.array(
  fc.record({
    event: text,
    data: fc.oneof(text, fc.jsonValue({ maxDepth: 2 })),
    id: fc.oneof(text, fc.nat()),
    retry: fc.nat({ max: 100_000 }),
  }, { requiredKeys: [] }),
  { maxLength: 8 },
).map((list) =>
  list.filter((event) => {
    try {
      encodeEvent(event);
      return true;
    } catch {
      return false;
    }
  })
);

const END = "ssekit-test-end";

/** What EventSource must dispatch for `sent`, by the spec. */
function expected(sent: SseEvent[]): SseMessage[] {
  let lastEventId = "";
  const messages: SseMessage[] = [];
  for (const event of sent) {
    if (event.id !== undefined) lastEventId = String(event.id);
    if (event.data === undefined) continue;
    messages.push({
      type: event.event || "message",
      data: typeof event.data === "string"
        ? event.data.replace(/\r\n?/g, "\n")
        : JSON.stringify(event.data),
      lastEventId,
    });
  }
  return messages;
}

/** Cuts `bytes` at the given points. */
function cut(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const at = [...new Set(points.map((p) => p % (bytes.length + 1)))]
    .sort((a, b) => a - b);
  const chunks = [];
  let start = 0;
  for (const point of [...at, bytes.length]) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  return chunks;
}

function withoutEnd(messages: SseMessage[]): SseMessage[] {
  assert.equal(messages.at(-1)?.type, END, "the stream ended with its end");
  return messages.slice(0, -1);
}

/** The stream as SseParseStream reads it from the network. */
async function readStream(url: URL): Promise<SseMessage[]> {
  const response = await fetch(url);
  return await Array.fromAsync(
    response.body!.pipeThrough(new SseParseStream()),
  );
}

/** Bytes cut up, through SseParseStream and through eventsource-parser. */
async function readCut(bytes: Uint8Array, points: number[]) {
  const chunks = cut(bytes, points);
  const ours = await Array.fromAsync(
    ReadableStream.from(chunks).pipeThrough(new SseParseStream()),
  );
  const theirs: SseMessage[] = [];
  let lastEventId = "";
  const parser = createParser({
    onId: (id) => lastEventId = id,
    onEvent: (m) =>
      theirs.push({ type: m.event ?? "message", data: m.data, lastEventId }),
  });
  // Not the default decoder: Deno's drops a U+FEFF at the start of every
  // chunk. eventsource-parser drops the stream's leading BOM itself.
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  for (const chunk of chunks) {
    parser.feed(decoder.decode(chunk, { stream: true }));
  }
  return { ours, theirs };
}

/** The stream as Deno's EventSource dispatches it, closed at its end. */
function readEventSource(url: URL, types: string[]): Promise<SseMessage[]> {
  const source = new EventSource(url);
  const messages: SseMessage[] = [];
  const done = new Promise<void>((resolve, reject) => {
    for (const type of new Set([...types, "message", END])) {
      source.addEventListener(type, (event) => {
        const { data, lastEventId } = event as MessageEvent;
        messages.push({ type, data, lastEventId });
        if (type !== END) return;
        source.close();
        resolve();
      });
    }
    source.onerror = () => {
      source.close();
      reject(new Error("EventSource failed before the end"));
    };
  });
  return within(done, 5000, "EventSource").then(() => messages);
}

Deno.test("Random events sent by SseWriter read back identical, however the bytes are cut", async () => {
  const runs = new Map<string, SseEvent[]>();
  await withServer((request) => {
    const sent = runs.get(new URL(request.url).pathname)!;
    const writer = new SseWriter({ signal: request.signal, keepAlive: 0 });
    for (const event of sent) writer.write(event);
    writer.write({ event: END, data: "" });
    writer.close();
    return writer.response;
  }, async (base) => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        events,
        fc.array(fc.nat(), { maxLength: 12 }),
        async (sent, points) => {
          const url = new URL(`/${++run}`, base);
          runs.set(url.pathname, sent);
          const want = expected(sent);
          assert.deepEqual(withoutEnd(await readStream(url)), want);
          const bytes = await (await fetch(url)).bytes();
          const { ours, theirs } = await readCut(bytes, points);
          assert.deepEqual(withoutEnd(ours), want);
          assert.deepEqual(withoutEnd(theirs), want);
          const types = want.map((m) => m.type);
          assert.deepEqual(
            withoutEnd(await readEventSource(url, types)),
            want,
          );
        },
      ),
      { numRuns: 60 },
    );
  });
});

Deno.test("Random events sent by SseChannel read the same by SseParseStream, eventsource-parser and EventSource", async () => {
  const runs = new Map<string, { sent: SseEvent[]; channel: SseChannel }>();
  await withServer((request) => {
    const run = runs.get(new URL(request.url).pathname)!;
    const response = run.channel.connect(request);
    // Both readers are connected: the same events go to both.
    if (run.channel.size === 2) {
      for (const event of run.sent) run.channel.send(event);
      run.channel.send({ event: END, data: "" });
      run.channel.close();
    }
    return response;
  }, async (base) => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        events,
        fc.array(fc.nat(), { maxLength: 12 }),
        async (sent, points) => {
          const url = new URL(`/${++run}`, base);
          const channel = new SseChannel({ keepAlive: 0 });
          runs.set(url.pathname, { sent, channel });
          const types = expected(sent).map((m) => m.type);
          const [bytes, source] = await Promise.all([
            fetch(url).then((response) => response.bytes()),
            readEventSource(url, types),
          ]);
          const { ours, theirs } = await readCut(bytes, points);
          assert.deepEqual(ours, source);
          assert.deepEqual(theirs, source);
          assert.deepEqual(parseEvents(new TextDecoder().decode(bytes)), ours);
          assert.equal(ours.length, types.length + 1);
        },
      ),
      { numRuns: 30 },
    );
  });
});

Deno.test("SseParseStream decodes random bytes as TextDecoder does, cut anywhere", async () => {
  const prefix = new TextEncoder().encode("data: ");
  const suffix = new TextEncoder().encode("\n\n");
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 24 }).map((bytes) =>
        bytes.map((byte) => byte === 10 || byte === 13 ? 0x80 : byte)
      ),
      fc.array(fc.nat(), { maxLength: 6 }),
      async (value, points) => {
        const bytes = Uint8Array.from([...prefix, ...value, ...suffix]);
        const [message] = await Array.fromAsync(
          ReadableStream.from(cut(bytes, points)).pipeThrough(
            new SseParseStream(),
          ),
        );
        const decoded = new TextDecoder("utf-8", { ignoreBOM: true })
          .decode(value);
        assert.equal(message.data, decoded);
      },
    ),
    { numRuns: 2000 },
  );
});
