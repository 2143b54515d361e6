// The parser, rule by rule of the WHATWG "event stream interpretation". Each
// input is parsed whole, as a string, and cut in two at every byte and at
// every UTF-16 unit (and in three, for short inputs): every way must give
// the same messages, the same last event id and the same retry.
import assert from "node:assert/strict";
import { parseEvents, type SseMessage, SseParseStream } from "../client.ts";

const ENCODER = new TextEncoder();

interface Parsed {
  messages: [type: string, data: string, lastEventId: string][];
  lastEventId: string;
  retry: number | undefined;
}

async function stream(chunks: (Uint8Array | string)[]): Promise<Parsed> {
  const parse = new SseParseStream();
  const messages = await Array.fromAsync(
    ReadableStream.from(chunks).pipeThrough(parse),
  );
  return {
    messages: messages.map((m) => [m.type, m.data, m.lastEventId]),
    lastEventId: parse.lastEventId,
    retry: parse.retry,
  };
}

function cuts<T extends Uint8Array | string>(whole: T): T[][] {
  const ways: T[][] = [[whole]];
  for (let i = 0; i <= whole.length; i++) {
    ways.push([whole.slice(0, i), whole.slice(i)] as T[]);
    if (whole.length > 24) continue;
    for (let j = i; j <= whole.length; j++) {
      ways.push([whole.slice(0, i), whole.slice(i, j), whole.slice(j)] as T[]);
    }
  }
  return ways;
}

/** Parses `input` every way; asserts they agree, and returns what they got. */
async function parse(input: string | Uint8Array): Promise<Parsed> {
  const bytes = typeof input === "string" ? ENCODER.encode(input) : input;
  const first = await stream([bytes]);
  if (typeof input === "string") {
    assert.deepEqual(
      parseEvents(input).map((m) => [m.type, m.data, m.lastEventId]),
      first.messages,
      "parseEvents",
    );
    for (const chunks of cuts(input)) {
      assert.deepEqual(await stream(chunks), first, JSON.stringify(chunks));
    }
  }
  for (const chunks of cuts(bytes)) {
    assert.deepEqual(
      await stream(chunks),
      first,
      `cut at ${chunks.map((c) => c.length)}`,
    );
  }
  return first;
}

async function messages(input: string | Uint8Array) {
  return (await parse(input)).messages;
}

Deno.test("SseParseStream dispatches an event at its blank line", async () => {
  assert.deepEqual(await messages("data: hello\n\n"), [
    ["message", "hello", ""],
  ]);
  assert.deepEqual(await messages("event: tick\nid: 1\ndata: {}\n\n"), [
    ["tick", "{}", "1"],
  ]);
  assert.deepEqual(await messages("data: a\n\ndata: b\n\n\n\ndata: c\n\n"), [
    ["message", "a", ""],
    ["message", "b", ""],
    ["message", "c", ""],
  ]);
});

Deno.test("SseParseStream ends lines at CR, LF and CRLF, even split between chunks", async () => {
  for (const end of ["\n", "\r", "\r\n"]) {
    assert.deepEqual(
      await messages(`data: a${end}data: b${end}${end}`),
      [["message", "a\nb", ""]],
      JSON.stringify(end),
    );
  }
  assert.deepEqual(await messages("data: a\r\ndata: b\rdata: c\n\r\n"), [
    ["message", "a\nb\nc", ""],
  ]);
  // A CR that ends one chunk and the LF that opens the next are one line
  // end, not two: no blank line, so nothing is dispatched yet.
  assert.deepEqual(await stream(["data: a\r", "\ndata: b\n"]), {
    messages: [],
    lastEventId: "",
    retry: undefined,
  });
  assert.deepEqual((await stream(["data: a\r", "\n", "\r\n"])).messages, [
    ["message", "a", ""],
  ]);
  assert.deepEqual((await stream(["data: a\r", "\r"])).messages, [
    ["message", "a", ""],
  ]);
  assert.deepEqual((await stream(["data: a\r", "", "\n", "\n"])).messages, [
    ["message", "a", ""],
  ]);
});

Deno.test("SseParseStream reads a field without a colon as one with an empty value", async () => {
  assert.deepEqual(await messages("data\n\n"), [["message", "", ""]]);
  assert.deepEqual(await messages("data\ndata\n\n"), [["message", "\n", ""]]);
  assert.deepEqual(await messages("event\ndata: x\n\n"), [
    ["message", "x", ""],
  ]);
  assert.deepEqual(await messages("id: 1\ndata: a\n\nid\ndata: b\n\n"), [
    ["message", "a", "1"],
    ["message", "b", ""],
  ]);
});

Deno.test("SseParseStream removes one space after the colon, no more", async () => {
  assert.deepEqual(
    await messages("data:a\n\ndata: a\n\ndata:  a\n\ndata: a:b \n\ndata: \n\n"),
    [
      ["message", "a", ""],
      ["message", "a", ""],
      ["message", " a", ""],
      ["message", "a:b ", ""],
      ["message", "", ""],
    ],
  );
  assert.deepEqual(await messages("event:  x\ndata: 1\n\n"), [
    [" x", "1", ""],
  ]);
});

Deno.test("SseParseStream ignores comments, unknown fields and field names in another case", async () => {
  assert.deepEqual(
    await messages(
      ":comment\n: data: no\nData: no\ndata : no\nfoo: bar\neventx: no\nretry_after_this: 1\ndata: yes\n\n",
    ),
    [["message", "yes", ""]],
  );
  assert.deepEqual(await messages(":only a comment\n\n"), []);
  // Lines without a colon are read once each, not searched to the end.
  const many = "x\n".repeat(200_000) + "dataa\n".repeat(100_000) + "data\n\n";
  assert.deepEqual(parseEvents(many), [
    { type: "message", data: "", lastEventId: "" },
  ]);
});

Deno.test("SseParseStream ignores an id with NUL and keeps the last id across events", async () => {
  const parsed = await parse(
    "id: 1\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nid: 2\n\ndata: d\n\n",
  );
  assert.deepEqual(parsed.messages, [
    ["message", "a", "1"],
    ["message", "b", "1"],
    ["message", "c", "1"],
    ["message", "d", "2"],
  ]);
  assert.equal(parsed.lastEventId, "2");
  assert.deepEqual(await messages("id: \0\ndata: e\n\n"), [
    ["message", "e", ""],
  ]);
});

Deno.test("SseParseStream takes retry only when it is all ASCII digits", async () => {
  assert.equal((await parse("retry: 2500\n")).retry, 2500);
  assert.equal((await parse("retry:0\n")).retry, 0);
  for (const bad of ["", " 5", "5 ", "1e3", "-1", "+1", "1.5", "٣", "x"]) {
    assert.equal(
      (await parse(`retry: 100\nretry: ${bad}\n`)).retry,
      100,
      JSON.stringify(bad),
    );
  }
  // A retry is not an event: it dispatches nothing, with or without data.
  assert.deepEqual(await messages("retry: 10\n\n"), []);
  assert.deepEqual(await messages("retry: 10\ndata: x\n\n"), [
    ["message", "x", ""],
  ]);
});

Deno.test("SseParseStream dispatches nothing for a block without data, but its id counts", async () => {
  const parsed = await parse("id: 7\nevent: ghost\n\ndata: after\n\n");
  // The block's type is reset with it: the next event is a "message".
  assert.deepEqual(parsed.messages, [["message", "after", "7"]]);
  assert.equal((await parse("id: k2f9x1-0\n\n")).lastEventId, "k2f9x1-0");
  assert.deepEqual(await messages("event: x\n\n\n"), []);
});

Deno.test("SseParseStream resets the event type after each event", async () => {
  assert.deepEqual(
    await messages(
      "event: tick\ndata: 1\n\nevent: tick\ndata: 2\n\ndata: 3\n\nevent: tic\ndata: 4\n\nevent: tickle\ndata: 5\n\nevent:\ndata: 6\n\n",
    ),
    [
      ["tick", "1", ""],
      ["tick", "2", ""],
      ["message", "3", ""],
      ["tic", "4", ""],
      ["tickle", "5", ""],
      ["message", "6", ""],
    ],
  );
});

Deno.test("SseParseStream removes only the data's last LF", async () => {
  assert.deepEqual(await messages("data: a\ndata:\n\n"), [
    ["message", "a\n", ""],
  ]);
  assert.deepEqual(await messages("data:\ndata:\ndata:\n\n"), [
    ["message", "\n\n", ""],
  ]);
});

Deno.test("SseParseStream does not dispatch an event cut off by the end of the stream", async () => {
  for (const input of ["data: a", "data: a\n", "data: a\r", "data: a\r\n"]) {
    assert.deepEqual(await messages(input), [], JSON.stringify(input));
  }
  // Nor does the cut-off block's id count.
  const parsed = await parse("id: 1\ndata: a\n\nid: 2\ndata: b\n");
  assert.deepEqual(parsed.messages, [["message", "a", "1"]]);
  assert.equal(parsed.lastEventId, "1");
  assert.deepEqual(parseEvents("data: a\n\ndata: b"), [
    { type: "message", data: "a", lastEventId: "" },
  ]);
});

Deno.test("SseParseStream decodes UTF-8, replacing what is not, even split between chunks", async () => {
  assert.deepEqual(await messages("event: é\nid: ✓\ndata: 😀 €\n\n"), [
    ["é", "😀 €", "✓"],
  ]);
  // Cut anywhere, one chunk is all ASCII (read from its bytes) and the
  // other is not (read from its text): both ways must read alike.
  assert.deepEqual(
    await messages("data: é\n\nevent: tick\r\nid: 1\rdata: x\n\ndata: ü\n\n"),
    [["message", "é", ""], ["tick", "x", "1"], ["message", "ü", "1"]],
  );
  const bad = Uint8Array.from([
    ...ENCODER.encode("data: "),
    0xff,
    0xe2,
    0x82, // a cut-off €
    0x41,
    0xf0,
    0x9f, // a cut-off 😀, then the line end
    0x0a,
    0x0a,
  ]);
  assert.deepEqual(await messages(bad), [
    ["message", new TextDecoder().decode(bad.subarray(6, 12)), ""],
  ]);
  assert.deepEqual(await messages(bad), [[
    "message",
    "\ufffd\ufffdA\ufffd",
    "",
  ]]);
  // A sequence cut off by the end of the stream is not an event either.
  assert.deepEqual(await stream([Uint8Array.of(0x64, 0x61, 0xe2)]), {
    messages: [],
    lastEventId: "",
    retry: undefined,
  });
});

Deno.test("SseParseStream drops one BOM at the start of the stream, and no other", async () => {
  const bom = Uint8Array.of(0xef, 0xbb, 0xbf);
  const data = ENCODER.encode("data: a\n\n");
  assert.deepEqual(await messages(Uint8Array.from([...bom, ...data])), [
    ["message", "a", ""],
  ]);
  assert.deepEqual(await messages("\ufeffdata: a\n\n"), [["message", "a", ""]]);
  assert.deepEqual(
    (await stream([new Uint8Array(0), "", bom, data])).messages,
    [
      ["message", "a", ""],
    ],
  );
  // A second BOM is part of the first line: a field named "\ufeffdata".
  assert.deepEqual(await messages("\ufeff\ufeffdata: a\n\n"), []);
  // A chunk that starts with U+FEFF keeps it, also after all-ASCII chunks.
  assert.deepEqual(
    (await stream(["data: a\n\n", "\ufeffdata: b\n\ndata: ", "\ufeffc\n\n"]))
      .messages,
    [["message", "a", ""], ["message", "\ufeffc", ""]],
  );
});

Deno.test("Deno's TextDecoderStream drops the BOM that starts the first chunk after all-ASCII ones", async () => {
  // Why ssekit decodes for itself (and the README says so): after all-ASCII
  // chunks, Deno 2.9's streaming decoder has kept no state, and reads the
  // next chunk as the start of a stream. It does so once: from then on it
  // keeps every BOM.
  const encoder = new TextEncoder();
  const chunks = ["a", "\ufeffb", "\ufeffc"].map((text) =>
    encoder.encode(text)
  );
  const decoded = await Array.fromAsync(
    ReadableStream.from(chunks).pipeThrough(new TextDecoderStream()),
  );
  assert.deepEqual(decoded, ["a", "b", "\ufeffc"]);
});

Deno.test("SseParseStream errors on a line or event over maxEventSize, and holds no more", async () => {
  const over = async (chunks: string[], maxEventSize = 16) => {
    const reading = Array.fromAsync(
      ReadableStream.from(chunks).pipeThrough(
        new SseParseStream({ maxEventSize }),
      ),
    );
    await assert.rejects(reading, (error: Error) => {
      assert.ok(error instanceof RangeError);
      assert.match(
        error.message,
        new RegExp(
          `^Cannot parse event stream: .* is longer than \`maxEventSize\` \\(${maxEventSize} UTF-16 code units\\)$`,
        ),
      );
      return true;
    });
  };
  await over(["data: 0123456789a\n\n"]);
  await over(["data: 01234", "56789", "abc"]); // no line end yet
  await over([": a comment that goes on"]);
  await over(["data: 0123456789\ndata: 012345\n\n"]); // 10 + LF + 6
  // A short line at the very end of a chunk counts too.
  await over(["id:12\n"], 4);
  await over(["\n", "data\n"], 3);
  // Exactly at the limit is fine, and so is much more in small events.
  const within = (chunks: string[]) =>
    Array.fromAsync(
      ReadableStream.from(chunks).pipeThrough(
        new SseParseStream({ maxEventSize: 16 }),
      ),
    );
  assert.deepEqual(await within(["data: 0123456789\ndata: 01234\n\n"]), [
    { type: "message", data: "0123456789\n01234", lastEventId: "" },
  ]);
  const many = Array.from({ length: 100 }, (_, i) => `data: ${i}\n\n`);
  assert.equal((await within(many)).length, 100);
});

Deno.test("SseParseStream and parseEvents reject bad input, naming it", async () => {
  assert.throws(
    () => new SseParseStream({ maxEventSize: 0 }),
    new RangeError(
      "Cannot create SseParseStream: `maxEventSize` must be a positive integer, got 0",
    ),
  );
  assert.throws(
    () => parseEvents("", { maxEventSize: 1.5 }),
    new RangeError(
      "Cannot parse events: `maxEventSize` must be a positive integer, got 1.5",
    ),
  );
  assert.throws(
    () => parseEvents(42 as unknown as string),
    new TypeError("Cannot parse events: `text` must be a string, got 42"),
  );
  const chunks = ReadableStream.from([{} as unknown as string]);
  await assert.rejects(
    Array.fromAsync(chunks.pipeThrough(new SseParseStream())),
    new TypeError(
      "Cannot parse event stream: a chunk must be a Uint8Array or a string, got an object",
    ),
  );
});

Deno.test("SseParseStream messages are plain objects with the MessageEvent's names", () => {
  const [message]: SseMessage[] = parseEvents("event: x\nid: 1\ndata: y\n\n");
  assert.deepEqual(Object.keys(message), ["type", "data", "lastEventId"]);
  assert.equal(Object.getPrototypeOf(message), Object.prototype);
});
