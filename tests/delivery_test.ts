// How queued events become chunks: a long burst in bounded parts, and a
// channel's events sent across awaits in one turn as one chunk.
import assert from "node:assert/strict";
import { encodeEvent, SseChannel, SseWriter } from "../mod.ts";

async function chunks(body: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of body) out.push(chunk);
  return out;
}

Deno.test("A long burst written without awaiting goes out intact, in bounded parts", async () => {
  const writer = new SseWriter({ keepAlive: 0 });
  const events = Array.from({ length: 5000 }, (_, i) => ({
    id: i,
    data: { i, text: "é".repeat(40) },
  }));
  for (const event of events) writer.write(event);
  const expected = events.map(encodeEvent).join("");
  // Counted in UTF-16 code units, parts and all.
  assert.equal(writer.bufferedAmount, expected.length);
  writer.close();
  const received = await chunks(writer.response.body!);
  assert.ok(received.length > 1, "more than one chunk");
  for (const chunk of received) {
    assert.ok(chunk.byteLength <= 2 * 65_536 + 256, `${chunk.byteLength} B`);
  }
  const bytes = new Uint8Array(received.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const chunk of received) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  assert.equal(new TextDecoder().decode(bytes), expected);
});

Deno.test("await write() waits until the queue, parts included, is below highWaterMark", async () => {
  const writer = new SseWriter({ keepAlive: 0, highWaterMark: 100_000 });
  const reader = writer.response.body!.getReader();
  writer.write({ data: "first" });
  await reader.read(); // the client reads once, then is busy
  let last: Promise<void> = Promise.resolve();
  let settled = false;
  for (let i = 0; i < 3000; i++) last = writer.write({ data: "x".repeat(90) });
  last.then(() => settled = true);
  assert.ok(writer.bufferedAmount > 100_000);
  // Each read takes one part; room comes once the rest fits.
  while (writer.bufferedAmount > 100_000) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(settled, false);
    await reader.read();
  }
  await last;
  assert.equal(settled, true);
  await reader.cancel();
});

Deno.test("A channel's events sent across awaits in one turn reach a waiting client as one chunk", async () => {
  const channel = new SseChannel({ keepAlive: 0 });
  const reader = channel.connect(new Request("http://x/")).body!.getReader();
  await reader.read(); // its position; now it waits
  const ids = [channel.send({ data: "a" })];
  await null;
  ids.push(channel.send({ data: "b" }));
  await null;
  ids.push(channel.send({ data: "c" }));
  const { value } = await reader.read();
  assert.equal(
    new TextDecoder().decode(value),
    ids.map((id, i) => `id: ${id}\ndata: ${"abc"[i]}\n\n`).join(""),
  );
  channel.close();
  await reader.cancel();
});
