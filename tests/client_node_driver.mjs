// Reads an event stream with the bundled SseClient the same way on any
// runtime and prints what it got as JSON. Run by client_node_test.ts under
// Node and under Deno: `driver.mjs BUNDLE URL`.
const [bundle, url] = process.argv.slice(2);
const { SseClient } = await import(bundle);

const client = new SseClient(url, {
  method: "POST",
  headers: { authorization: "Bearer node-key" },
  body: JSON.stringify({ prompt: "count" }),
  retry: 10,
});
const states = [client.state];
client.addEventListener("statechange", () => states.push(client.state));
const messages = [];
for await (const message of client) {
  if (message.type === "done") break;
  messages.push(message);
}
console.log(
  JSON.stringify({ messages, states, lastEventId: client.lastEventId }),
);
