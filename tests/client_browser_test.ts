/// <reference lib="dom" />
// SseClient in real headless Chromium (Debian's `chromium`), driven by
// playwright-core: a page loads the client bundled with `deno bundle` and
// reads streams that EventSource could not, with a header and a POST body.
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { lastEventId, SseWriter } from "../mod.ts";
import { needs, withServer } from "./util.ts";
import { withBundle } from "./runtime_util.ts";
import { CHROMIUM, INSTALL_CHROMIUM, launchChromium } from "./chromium_util.ts";

const CHROME = needs(
  "the client's browser test",
  { chromium: CHROMIUM !== undefined },
  INSTALL_CHROMIUM,
);

function bundleClient(): Promise<string> {
  return withBundle("client.ts", (path) => Deno.readTextFile(path));
}

/** A page that runs `script` as a module, with the client at /client.js. */
function page(script: string): Response {
  const html = `<!doctype html>
<meta charset="utf-8">
<title>SseClient</title>
<script type="module">
import { SseClient, SseResponseError } from "/client.js";
${script}
</script>`;
  return new Response(html, {
    headers: { "content-type": "text/html; charset=utf-8" },
  });
}

/** Waits for the page's `window.result`, and returns it. */
async function result(tab: Page): Promise<unknown> {
  await tab.waitForFunction(() => "result" in window, undefined, {
    timeout: 10_000,
  });
  return await tab.evaluate(() => (window as { result?: unknown }).result);
}

Deno.test({
  name: "SseClient runs in headless Chromium",
  ignore: CHROME.ignore,
  async fn(t) {
    CHROME.check();
    const client = await bundleClient();
    const received: { token: string | null; last: string | undefined }[] = [];
    const scripts = new Map<string, string>();
    const handler = async (request: Request) => {
      const { pathname } = new URL(request.url);
      if (pathname === "/client.js") {
        return new Response(client, {
          headers: { "content-type": "text/javascript; charset=utf-8" },
        });
      }
      if (scripts.has(pathname)) return page(scripts.get(pathname)!);
      if (pathname === "/ticks") {
        // Two ticks a connection, then the stream ends; a resumed one goes
        // on from Last-Event-ID, and `done` follows tick 4.
        const token = request.headers.get("x-token");
        const last = lastEventId(request);
        received.push({ token, last });
        if (token !== "secret") return new Response(null, { status: 403 });
        const from = parseInt(last ?? "0");
        const writer = new SseWriter();
        writer.write({ retry: 20 });
        for (let i = from + 1; i <= from + 2; i++) {
          writer.write({ event: "tick", id: `${i}-é`, data: String(i) });
        }
        if (from === 2) writer.write({ event: "done", data: "" });
        writer.close();
        return writer.response;
      }
      if (pathname === "/v1/chat") {
        if (request.headers.get("authorization") !== "Bearer browser-key") {
          return Response.json({ error: "bad key" }, { status: 401 });
        }
        const { prompt } = await request.json();
        const writer = new SseWriter();
        for (const word of ["You", " said", `: ${prompt}`]) {
          writer.write({ data: { delta: word } });
        }
        writer.write({ data: "[DONE]" });
        writer.close();
        return writer.response;
      }
      return new Response("Not found", { status: 404 });
    };
    let browser: Browser | undefined;
    await withServer(handler, async (url) => {
      try {
        browser = await launchChromium();
        const open = async (path: string, script: string) => {
          scripts.set(path, script);
          const tab = await browser!.newPage();
          const errors: string[] = [];
          tab.on("pageerror", (error) => errors.push(error.message));
          await tab.goto(new URL(path, url).href);
          return { tab, errors };
        };

        await t.step(
          "reads a stream with a custom header, across a reconnect",
          async () => {
            const { tab, errors } = await open(
              "/ticks.html",
              `const client = new SseClient("/ticks", {
  headers: { "x-token": "secret" },
});
const states = [client.state];
client.addEventListener("statechange", () => states.push(client.state));
const messages = [];
for await (const message of client) {
  if (message.type === "done") break;
  messages.push([message.type, message.data, message.lastEventId]);
}
window.result = { messages, states };`,
            );
            try {
              assert.deepEqual(await result(tab), {
                messages: [1, 2, 3, 4].map((i) => ["tick", `${i}`, `${i}-é`]),
                states: [
                  "connecting",
                  "open",
                  "retrying",
                  "connecting",
                  "open",
                  "closed",
                ],
              });
              // The id went back as UTF-8, as EventSource sends it.
              assert.deepEqual(received, [
                { token: "secret", last: undefined },
                { token: "secret", last: "2-é" },
              ]);
              assert.deepEqual(errors, []);
            } finally {
              await tab.close();
            }
          },
        );

        await t.step(
          "streams a POST answer, and shows a refusal with its body",
          async () => {
            const { tab, errors } = await open(
              "/chat.html",
              `const ask = (key) => new SseClient("/v1/chat", {
  method: "POST",
  headers: { authorization: "Bearer " + key, "content-type": "application/json" },
  body: JSON.stringify({ prompt: "hi" }),
  reconnect: "dropped",
});
let answer = "";
for await (const message of ask("browser-key")) {
  if (message.data === "[DONE]") break;
  answer += JSON.parse(message.data).delta;
}
let refusal;
try {
  for await (const _ of ask("wrong")) {}
} catch (error) {
  refusal = [error instanceof SseResponseError, error.status, error.body];
}
window.result = { answer, refusal };`,
            );
            try {
              assert.deepEqual(await result(tab), {
                answer: "You said: hi",
                refusal: [true, 401, '{"error":"bad key"}'],
              });
              assert.deepEqual(errors, []);
            } finally {
              await tab.close();
            }
          },
        );
      } finally {
        await browser?.close();
      }
    });
  },
});
