// Drives the bundled module the same way on any runtime and prints what the
// client received as JSON. Run by node_test.ts under Node and under Deno.
const { SseClosedError, SseWriter } = await import(process.argv[2]);

const writer = new SseWriter({ keepAlive: 30, highWaterMark: 64 });
const reader = writer.response.body.getReader();
const decoder = new TextDecoder();
let text = "";
const reading = (async () => {
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const chunk = decoder.decode(value, { stream: true });
    text += chunk;
    if (chunk === ":\n") await reader.cancel(); // leave after a keep-alive
  }
})();
await writer.write({ event: "hi", id: 1, retry: 2000, data: " é\r\n😀" });
await writer.comment("note");
for (let i = 0; i < 10; i++) await writer.write({ id: i, data: { i } });
await reading; // silence until a keep-alive comment, then the client leaves
let after;
try {
  await writer.write({ data: "after the client left" });
} catch (error) {
  after = error instanceof SseClosedError ? error.name : String(error);
}
console.log(JSON.stringify({
  headers: [...writer.response.headers],
  text,
  aborted: writer.signal.aborted,
  after,
}));
