// Random events, encoded by encodeEvent, sent as UTF-8 in random slices and
// parsed by eventsource-parser (a client we did not write), come back as sent.
import assert from "node:assert/strict";
import fc from "fast-check";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { encodeComment, encodeEvent, type SseEvent } from "../mod.ts";

const SPECIAL = ["\n", "\r", "\r\n", "\0", " ", ":", "é", "€", "😀", "\u2028"];
/** Strings rich in what breaks encoders: line breaks, NUL, spaces, unicode. */
const text = fc.string({
  unit: fc.oneof(
    fc.constantFrom(...SPECIAL),
    fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
  ),
  maxLength: 20,
});
// Lone surrogates cannot travel as UTF-8; TextEncoder replaces them.
const wellFormed = text.filter((s) => s.isWellFormed());

const event: fc.Arbitrary<SseEvent> = fc.record({
  event: wellFormed,
  data: fc.oneof(wellFormed, fc.jsonValue()),
  id: fc.oneof(wellFormed, fc.integer(), fc.double()),
  retry: fc.oneof(fc.nat(), fc.integer({ min: -10, max: -1 })),
}, { requiredKeys: [] });

function breaksLine(value: unknown, withNul = false): boolean {
  return typeof value === "string" &&
    (withNul ? /[\r\n\0]/ : /[\r\n]/).test(value);
}

/** What a conforming client gets from `event`, or the error it must cause. */
function expected(e: SseEvent) {
  const fields = [e.event, e.data, e.id, e.retry];
  if (fields.every((field) => field === undefined)) return TypeError;
  if (breaksLine(e.event) || breaksLine(e.id, true)) return TypeError;
  if (e.event !== undefined && e.data === undefined) return TypeError;
  if (e.retry !== undefined && e.retry < 0) return RangeError;
  if (typeof e.id === "number" && !Number.isFinite(e.id)) return RangeError;
  const data = e.data === undefined
    ? undefined
    : typeof e.data === "string"
    ? e.data.replace(/\r\n?/g, "\n")
    : JSON.stringify(e.data);
  return {
    message: data === undefined ? undefined : {
      event: e.event || undefined,
      id: e.id === undefined ? undefined : String(e.id),
      data,
    },
    retry: e.retry,
  };
}

function parse(chunks: Uint8Array[]) {
  const messages: EventSourceMessage[] = [];
  const retries: number[] = [];
  const comments: string[] = [];
  const parser = createParser({
    onEvent: (message) => messages.push({ ...message }),
    onRetry: (retry) => retries.push(retry),
    onComment: (comment) => comments.push(comment),
  });
  const decoder = new TextDecoder();
  for (const chunk of chunks) {
    parser.feed(decoder.decode(chunk, { stream: true }));
  }
  parser.feed(decoder.decode());
  return { messages, retries, comments };
}

/** Splits bytes at the given cut points, possibly inside a UTF-8 sequence. */
function slice(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))]
    .sort((a, b) => a - b);
  const chunks = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  return chunks;
}

Deno.test("encodeEvent output parses back identically with eventsource-parser", () => {
  fc.assert(
    fc.property(
      fc.array(event, { maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      (events, cuts) => {
        let wire = "";
        const messages = [];
        const retries = [];
        for (const e of events) {
          const want = expected(e);
          if (typeof want === "function") {
            assert.throws(() => encodeEvent(e), want);
            continue;
          }
          wire += encodeEvent(e);
          if (want.message) messages.push(want.message);
          if (want.retry !== undefined) retries.push(want.retry);
        }
        const got = parse(slice(new TextEncoder().encode(wire), cuts));
        assert.deepEqual(got.messages, messages);
        assert.deepEqual(got.retries, retries);
        assert.deepEqual(got.comments, []);
      },
    ),
    { numRuns: 3000 },
  );
});

Deno.test("encodeComment output parses back as comments, never as events", () => {
  fc.assert(
    fc.property(wellFormed, (comment) => {
      const got = parse([new TextEncoder().encode(encodeComment(comment))]);
      assert.deepEqual(got.messages, []);
      assert.deepEqual(got.comments, comment.split(/\r\n|\r|\n/));
    }),
    { numRuns: 2000 },
  );
});
