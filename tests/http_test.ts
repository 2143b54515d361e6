// SseWriter behind a real Deno.serve on 127.0.0.1, read by real clients.
import assert from "node:assert/strict";
import { lastEventId, SseClosedError, SseWriter } from "../mod.ts";
import { aborted, deadline, delay, withServer } from "./util.ts";
import { StreamReader } from "./stream_reader.ts";

Deno.test("Deno's EventSource receives named events, ids and retry, and resumes", async () => {
  const seen: (string | undefined)[] = [];
  await withServer((request) => {
    seen.push(lastEventId(request));
    const writer = new SseWriter({ signal: request.signal });
    if (seen.length === 1) {
      writer.write({ retry: 20 });
      writer.write({ event: "greeting", id: "1", data: " hello\nworld" });
      writer.write({ id: 2, data: { n: 2 } });
    } else {
      // Resumed: one last event, and a retry so long that the client does
      // not come back within this test.
      writer.write({ event: "done", id: "3", retry: 3_600_000, data: "" });
    }
    writer.close();
    return writer.response;
  }, async (url) => {
    const source = new EventSource(url);
    const received: [string, string, string][] = [];
    const record = (event: Event) => {
      const { type, data, lastEventId } = event as MessageEvent<string>;
      received.push([type, data, lastEventId]);
    };
    source.addEventListener("greeting", record);
    source.addEventListener("message", record);
    const done = new Promise<void>((resolve) =>
      source.addEventListener("done", (event) => {
        record(event);
        resolve();
      })
    );
    // Deno's default reconnection delay is seconds; `retry: 20` makes it
    // come back long before this deadline.
    const limit = deadline(2000);
    const first = await Promise.race([done, limit.reached]);
    limit.cancel();
    await delay(200); // would a third connection follow? (retry says no)
    source.close();
    assert.notEqual(first, "deadline", "the client resumed after `retry: 20`");
    assert.deepEqual(received, [
      ["greeting", " hello\nworld", "1"],
      ["message", '{"n":2}', "2"],
      ["done", "", "3"],
    ]);
    assert.deepEqual(seen, [undefined, "2"]);
  });
});

Deno.test("SseWriter stops its producer when a real client disconnects", async () => {
  let writer!: SseWriter;
  let timer: ReturnType<typeof setInterval> | undefined;
  let ticks = 0;
  await withServer((request) => {
    writer = new SseWriter({ signal: request.signal });
    timer = setInterval(() => writer.write({ id: ++ticks, data: ticks }), 5);
    writer.signal.addEventListener("abort", () => clearInterval(timer));
    return writer.response;
  }, async (url) => {
    const controller = new AbortController();
    const response = await fetch(url, { signal: controller.signal });
    const body = new StreamReader(response.body!);
    await body.until("id: 3\n");
    controller.abort();
    await body.rest().catch(() => {});
    await aborted(writer.signal);
    assert.equal(writer.closed, true);
    await assert.rejects(writer.write({ data: "late" }), SseClosedError);
    const stoppedAt = ticks;
    await delay(30);
    assert.equal(ticks, stoppedAt, "no tick after the disconnect");
  });
});

Deno.test("SseWriter holds a producer when a real client reads nothing", async () => {
  const highWaterMark = 64 * 1024;
  const event = { data: "x".repeat(1000) };
  let written = 0;
  let producer!: Promise<void>;
  let writer!: SseWriter;
  await withServer((request) => {
    writer = new SseWriter({ signal: request.signal, highWaterMark });
    producer = (async () => {
      // A budget of 1 GiB: without backpressure this fills memory.
      for (let i = 0; i < 1024 * 1024; i++) {
        await writer.write(event);
        written += 1008;
      }
    })();
    return writer.response;
  }, async (url) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: +url.port });
    await conn.write(
      new TextEncoder().encode(
        `GET / HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`,
      ),
    );
    // Wait until the producer makes no progress for 200 ms (at most 5 s).
    let last = -1;
    for (let i = 0; i < 100 && written !== last; i++) {
      last = written;
      await delay(50);
      if (written === last) await delay(150);
    }
    assert.equal(written, last, "the producer stalls");
    // The writer holds just over highWaterMark; the rest of what was written
    // sits in the kernel's socket buffers (a few MiB on loopback), far from
    // the 1 GiB the producer wanted to send.
    const held = writer.bufferedAmount;
    console.log(
      `stalled after ${(written / 1024).toFixed(0)} KiB written, ` +
        `${(held / 1024).toFixed(0)} KiB held by the writer ` +
        `(highWaterMark ${highWaterMark / 1024} KiB)`,
    );
    assert.ok(held > highWaterMark, `${held} bytes held`);
    assert.ok(held <= highWaterMark + 1008, `${held} bytes held`);
    assert.ok(written < 32 * 1024 * 1024, `${written} bytes written`);
    conn.close();
    await assert.rejects(producer, SseClosedError);
  });
});

Deno.test("SseWriter sends keep-alive comments to a real client only in silence", async () => {
  let writer!: SseWriter;
  await withServer((request) => {
    writer = new SseWriter({ signal: request.signal, keepAlive: 80 });
    return writer.response;
  }, async (url) => {
    const response = await fetch(url);
    const body = new StreamReader(response.body!);
    let comments = 0;
    const reading = (async () => {
      for (let chunk; (chunk = await body.next()) !== undefined;) {
        comments += chunk.split(":\n").length - 1;
      }
    })();
    await delay(400);
    const inSilence = comments;
    assert.ok(inSilence >= 2, `${inSilence} comments in 400 ms of silence`);
    for (let i = 0; i < 30; i++) {
      await writer.write({ data: i });
      await delay(10);
    }
    assert.equal(comments, inSilence, "no comment during traffic");
    writer.close();
    await reading;
  });
});

Deno.test("SseWriter's response reaches a real client with its headers", async () => {
  await withServer((request) => {
    const writer = new SseWriter({ signal: request.signal });
    writer.write({ data: "hi" });
    writer.close();
    return writer.response;
  }, async (url) => {
    const response = await fetch(url);
    assert.equal(response.status, 200);
    assert.equal(
      response.headers.get("content-type"),
      "text/event-stream; charset=utf-8",
    );
    assert.equal(
      response.headers.get("cache-control"),
      "no-cache, no-transform",
    );
    assert.equal(response.headers.get("x-accel-buffering"), "no");
    assert.equal(await response.text(), "data: hi\n\n");
  });
});
