import assert from "node:assert/strict";
import {
  encodeEvent,
  lastEventId,
  SseClosedError,
  sseResponse,
  SseWriter,
} from "../mod.ts";
import { aborted, delay } from "./util.ts";
import { StreamReader } from "./stream_reader.ts";

Deno.test("SseWriter responds with event-stream headers and no hop-by-hop ones", () => {
  const writer = new SseWriter({ keepAlive: 0 });
  const { status, headers } = writer.response;
  assert.equal(status, 200);
  assert.deepEqual([...headers], [
    ["cache-control", "no-cache, no-transform"],
    ["content-type", "text/event-stream; charset=utf-8"],
    ["x-accel-buffering", "no"],
  ]);
  writer.close();
});

Deno.test("SseWriter takes extra headers and a status", () => {
  const writer = new SseWriter({
    status: 201,
    headers: { "cache-control": "private, no-cache", "x-app": "1" },
  });
  assert.equal(writer.response.status, 201);
  assert.equal(
    writer.response.headers.get("cache-control"),
    "private, no-cache",
  );
  assert.equal(writer.response.headers.get("x-app"), "1");
  assert.equal(
    writer.response.headers.get("content-type"),
    "text/event-stream; charset=utf-8",
  );
  writer.close();
});

Deno.test("SseWriter rejects bad options with an error naming the field", async (t) => {
  const cases: [unknown, ErrorConstructor, string][] = [
    [
      { headers: { Connection: "keep-alive" } },
      TypeError,
      'Cannot create SseWriter: `headers` must not set the hop-by-hop header "connection"',
    ],
    [
      { headers: { "Transfer-Encoding": "chunked" } },
      TypeError,
      'Cannot create SseWriter: `headers` must not set the hop-by-hop header "transfer-encoding"',
    ],
    [
      { headers: { "Keep-Alive": "timeout=5" } },
      TypeError,
      'Cannot create SseWriter: `headers` must not set the hop-by-hop header "keep-alive"',
    ],
    [
      { headers: { "content-type": "text/plain" } },
      TypeError,
      'Cannot create SseWriter: `headers` sets content-type "text/plain", but an event stream is "text/event-stream"',
    ],
    [
      { keepAlive: -1 },
      RangeError,
      "Cannot create SseWriter: `keepAlive` must be 0 (off) or milliseconds up to 2147483647, got -1",
    ],
    [
      { keepAlive: "15s" },
      RangeError,
      'Cannot create SseWriter: `keepAlive` must be 0 (off) or milliseconds up to 2147483647, got "15s"',
    ],
    [
      { highWaterMark: 1.5 },
      RangeError,
      "Cannot create SseWriter: `highWaterMark` must be a non-negative integer, got 1.5",
    ],
    [
      { status: 204 },
      RangeError,
      "Cannot create SseWriter: `status` must be an integer from 200 to 599 that allows a body, got 204",
    ],
    [
      { status: 100 },
      RangeError,
      "Cannot create SseWriter: `status` must be an integer from 200 to 599 that allows a body, got 100",
    ],
  ];
  for (const [options, type, message] of cases) {
    await t.step(message, () => {
      assert.throws(() => new SseWriter(options as never), (error: Error) => {
        assert.equal(error.constructor, type);
        assert.equal(error.message, message);
        return true;
      });
    });
  }
});

Deno.test("SseWriter sends an event to a waiting client at once, as its own chunk", async () => {
  const writer = new SseWriter({ keepAlive: 0 });
  const reader = writer.response.body!.getReader();
  const read = reader.read();
  await delay(0); // the stream starts, and the client waits for data
  writer.write({ event: "tick", id: 1, data: "now" });
  // Delivered within this turn of the event loop: before any timer fires.
  const timer = delay(0);
  const first = await Promise.race([read, timer.then(() => "timer")]);
  await timer;
  assert.notEqual(first, "timer");
  assert.equal(
    new TextDecoder().decode((await read).value),
    "event: tick\nid: 1\ndata: now\n\n",
  );
  writer.close();
  assert.equal((await reader.read()).done, true);
});

Deno.test("SseWriter joins a burst of writes into one chunk, awaited or not", async (t) => {
  const events = Array.from({ length: 100 }, (_, i) => ({ id: i, data: i }));
  const wire = events.map(encodeEvent).join("");
  for (const awaited of [false, true]) {
    await t.step(awaited ? "awaited" : "not awaited", async () => {
      const writer = new SseWriter({ keepAlive: 0 });
      const body = new StreamReader(writer.response.body!);
      const first = body.next();
      await delay(0); // the stream starts and waits for data
      for (const event of events) {
        if (awaited) await writer.write(event);
        else writer.write(event);
      }
      assert.equal(await first, wire);
      writer.close();
      assert.equal(await body.next(), undefined);
    });
  }
  await t.step("while the client is busy, until it reads again", async () => {
    const writer = new SseWriter({ keepAlive: 0 });
    const body = new StreamReader(writer.response.body!);
    for (const event of events) writer.write(event); // nobody reads yet
    await delay(10);
    assert.equal(await body.next(), wire);
    writer.close();
    assert.equal(await body.next(), undefined);
  });
  await t.step(`in chunks of at most ${16_384} units`, async () => {
    const writer = new SseWriter({ keepAlive: 0 });
    const body = new StreamReader(writer.response.body!);
    const first = body.next();
    await delay(0);
    const big = { data: "x".repeat(1000) };
    for (let i = 0; i < 40; i++) writer.write(big);
    assert.equal((await first)!.length, 17 * encodeEvent(big).length);
    writer.close();
    await body.rest();
  });
});

Deno.test("SseWriter holds a producer that awaits write() near highWaterMark bytes", async () => {
  const highWaterMark = 4096;
  const writer = new SseWriter({ keepAlive: 0, highWaterMark });
  const event = { data: "x".repeat(100) }; // 108 bytes on the wire
  const size = encodeEvent(event).length;
  let written = 0;
  const producer = (async () => {
    for (let i = 0; i < 100_000; i++) {
      await writer.write(event);
      written += size;
    }
  })();
  await delay(20); // the client reads nothing meanwhile
  assert.ok(written <= highWaterMark, `${written} bytes written`);
  assert.ok(written > highWaterMark - size, `${written} bytes written`);
  // The write that crossed the mark is queued; its producer waits on it.
  assert.equal(writer.bufferedAmount, written + size);

  const body = new StreamReader(writer.response.body!);
  const stalledAt = written;
  assert.equal((await body.next())!.length, stalledAt + size);
  await delay(0);
  assert.ok(written > stalledAt, "the producer resumes once the client reads");

  writer.close();
  await assert.rejects(producer, SseClosedError);
  await body.rest();
});

Deno.test("SseWriter.close() delivers what is queued, then ends the stream", async () => {
  const writer = new SseWriter({ keepAlive: 0 });
  writer.write({ data: "a" });
  writer.comment("note");
  writer.write({ data: "b" });
  writer.close();
  writer.close();
  assert.equal(writer.closed, true);
  assert.equal(writer.signal.aborted, true);
  await assert.rejects(writer.write({ data: "c" }), SseClosedError);
  await assert.rejects(writer.comment(), SseClosedError);
  assert.equal(
    await writer.response.text(),
    "data: a\n\n: note\ndata: b\n\n",
  );
});

Deno.test("SseWriter ends once, whichever of its three close paths comes first", async (t) => {
  const paths = {
    "close()": (writer: SseWriter) => writer.close(),
    "options.signal": (_: SseWriter, controller: AbortController) =>
      controller.abort(),
    "the client cancelling": (
      _: SseWriter,
      __: AbortController,
      body: StreamReader,
    ) => body.cancel(),
  };
  for (const [name, end] of Object.entries(paths)) {
    await t.step(name, async () => {
      const controller = new AbortController();
      const writer = new SseWriter({
        signal: controller.signal,
        keepAlive: 10,
        highWaterMark: 0,
      });
      const body = new StreamReader(writer.response.body!);
      const first = body.next(); // starts keep-alive
      const pending = writer.write({ data: "waits for room" });
      const aborts: unknown[] = [];
      writer.signal.addEventListener("abort", () => aborts.push(1));
      await end(writer, controller, body);
      controller.abort();
      writer.close();
      assert.equal(writer.closed, true);
      assert.equal(aborts.length, 1);
      await assert.rejects(pending, SseClosedError);
      await assert.rejects(writer.write({ data: "late" }), SseClosedError);
      await first;
      // Keep-alive must be stopped: the sanitizer fails the test otherwise.
    });
  }
});

Deno.test("SseWriter with an aborted signal closes once its caller can listen", async () => {
  const writer = new SseWriter({ signal: AbortSignal.abort() });
  const timer = setInterval(() => {}, 1000);
  writer.signal.addEventListener("abort", () => clearInterval(timer));
  await aborted(writer.signal);
  assert.equal(writer.closed, true);
  await assert.rejects(writer.write({ data: "x" }), SseClosedError);
  assert.equal(await writer.response.text(), "");
});

Deno.test("SseWriter rejects a bad event at the call and keeps streaming", async () => {
  const writer = new SseWriter({ keepAlive: 0 });
  writer.write({ data: "before" });
  assert.throws(() => writer.write({ event: "x\ndata: forged", data: 1 }), {
    name: "TypeError",
    message:
      'Cannot encode event: `event` contains a line break: "x\\ndata: forged"',
  });
  assert.throws(() => writer.write({ id: "1\0" }), TypeError);
  assert.throws(() => writer.write({ retry: -1 }), RangeError);
  writer.write({ data: "after" });
  writer.close();
  assert.equal(
    await writer.response.text(),
    "data: before\n\ndata: after\n\n",
  );
});

Deno.test("SseWriter writes after a disconnect do not crash an unawaiting producer", async () => {
  const writer = new SseWriter({ keepAlive: 0 });
  await writer.response.body!.cancel();
  writer.write({ data: "nobody listens" }); // not awaited, not caught
  await delay(0);
  assert.equal(writer.closed, true);
});

Deno.test("SseWriter sends keep-alive comments in silence and none during traffic", async () => {
  const keepAlive = 60;
  const writer = new SseWriter({ keepAlive });
  const body = new StreamReader(writer.response.body!);
  let comments = 0;
  const reading = (async () => {
    for (let chunk; (chunk = await body.next()) !== undefined;) {
      if (chunk === ":\n") comments++;
    }
  })();

  await delay(keepAlive * 5); // silence
  const inSilence = comments;
  assert.ok(inSilence >= 2, `${inSilence} keep-alive comments in silence`);

  for (let i = 0; i < 20; i++) { // traffic every keepAlive / 6 ms
    await writer.write({ data: i });
    await delay(keepAlive / 6);
  }
  assert.equal(comments, inSilence, "no keep-alive comment during traffic");
  writer.close();
  await reading;
});

Deno.test("SseWriter with keepAlive 0 sends no comments", async () => {
  const writer = new SseWriter({ keepAlive: 0 });
  const body = new StreamReader(writer.response.body!);
  const read = body.next();
  await delay(50);
  writer.close();
  assert.equal(await read, undefined);
});

Deno.test("sseResponse closes the stream when run settles", async () => {
  const response = sseResponse(async (writer) => {
    await writer.write({ data: 1 });
    await writer.write({ data: 2 });
  }, { keepAlive: 0 });
  assert.equal(await response.text(), "data: 1\n\ndata: 2\n\n");
});

Deno.test("sseResponse sends no error text to the client, and reports it", async () => {
  const errors: unknown[] = [];
  const response = sseResponse((writer) => {
    writer.write({ data: "partial" });
    throw new Error("database password is hunter2");
  }, { onError: (error) => errors.push(error) });
  assert.equal(await response.text(), "data: partial\n\n");
  assert.equal(errors.length, 1);
  assert.equal((errors[0] as Error).message, "database password is hunter2");
});

Deno.test("sseResponse ignores the errors that mean the client left", async () => {
  const errors: unknown[] = [];
  let wrote = 0;
  const response = sseResponse(async (writer) => {
    for (;;) {
      await writer.write({ data: ++wrote });
      await new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, 5);
        writer.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(writer.signal.reason);
        }, { once: true });
      });
    }
  }, { onError: (error) => errors.push(error), keepAlive: 0 });
  const body = new StreamReader(response.body!);
  await body.until("data: 2\n\n");
  await body.cancel();
  await delay(10);
  assert.deepEqual(errors, []);
});

Deno.test("sseResponse rejects a run that is not a function", () => {
  assert.throws(() => sseResponse("nope" as never), {
    name: "TypeError",
    message: 'Cannot create SSE response: `run` must be a function, got "nope"',
  });
});

Deno.test("lastEventId reads the header, else the lastEventId query parameter", () => {
  const url = "http://localhost/sse";
  assert.equal(lastEventId(new Request(url)), undefined);
  assert.equal(
    lastEventId(new Request(url, { headers: { "Last-Event-ID": "7" } })),
    "7",
  );
  assert.equal(lastEventId(new Request(`${url}?lastEventId=9`)), "9");
  assert.equal(
    lastEventId(
      new Request(`${url}?lastEventId=9`, {
        headers: { "Last-Event-ID": "" },
      }),
    ),
    "",
  );
});

Deno.test("lastEventId decodes a UTF-8 header that the server gave as Latin-1", () => {
  const latin1 = (text: string) =>
    String.fromCharCode(...new TextEncoder().encode(text));
  const header = (value: string) =>
    lastEventId(
      new Request("http://x/", { headers: { "last-event-id": value } }),
    );
  assert.equal(header(latin1("é1")), "é1"); // "Ã©1" as Deno gives it
  assert.equal(header(latin1("ü✓😀-7")), "ü✓😀-7");
  assert.equal(header("plain-ascii-1"), "plain-ascii-1");
  // Not UTF-8: returned as it came.
  assert.equal(header("\xc3\x28"), "\xc3\x28");
  assert.equal(header("caf\xe9"), "caf\xe9");
});

Deno.test("SseWriter.signal aborts when the client cancels, before any write", async () => {
  const writer = new SseWriter();
  const body = writer.response.body!;
  const reader = body.getReader();
  const read = reader.read();
  await reader.cancel();
  await aborted(writer.signal);
  assert.equal((await read).done, true);
});
