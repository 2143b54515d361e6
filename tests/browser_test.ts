/// <reference lib="dom" />
// The demo page in real headless Chromium (Debian's `chromium`), driven by
// playwright-core. Screenshots go to tests/artifacts/; with
// UPDATE_SCREENSHOT=1 the laptop one also replaces static/screenshot.png, the
// README's picture.
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { BroadcastChannelBackplane, lastEventId, SseWriter } from "../mod.ts";
import {
  cutFirstStream,
  type DemoProcess,
  startDemoProcess,
  withDemo,
} from "./demo_util.ts";
import { found as REDIS_FOUND, Redis } from "./redis_util.ts";
import { delay, IN_CI, needs, withServer } from "./util.ts";
import { CHROMIUM, INSTALL_CHROMIUM, launchChromium } from "./chromium_util.ts";

const CHROME = needs(
  "the browser test",
  { chromium: CHROMIUM !== undefined },
  INSTALL_CHROMIUM,
);

const ARTIFACTS = new URL("./artifacts/", import.meta.url);
const README_SCREENSHOT = new URL("../static/screenshot.png", import.meta.url);

/** Fills in the form and presses Start. */
async function startStream(
  page: Page,
  count: number,
  intervalMs: number,
): Promise<void> {
  await page.fill("input[name=count]", String(count));
  await page.fill("input[name=intervalMs]", String(intervalMs));
  await page.click("#start");
}

/** The log as the page shows it: `[event, id, data]` per line. */
function logRows(page: Page): Promise<string[][]> {
  return page.$$eval(
    "#log li",
    (items) =>
      items.map((item) =>
        [".name", ".id", ".data"].map((part) =>
          item.querySelector(part)!.textContent ?? ""
        )
      ),
  );
}

function text(page: Page, selector: string): Promise<string> {
  return page.locator(selector).innerText();
}

/** What the broadcast page shows, for failure messages. */
function broadcastView(page: Page): Promise<Record<string, unknown>> {
  return page.evaluate(() => {
    const $ = (id: string) => document.getElementById(id)!;
    return {
      state: $("state").dataset.state,
      detail: $("detail").textContent,
      backplane: $("backplane-row").hidden ? null : $("backplane").textContent,
      notice: $("notice").hidden ? null : $("notice").textContent,
      log: [...document.querySelectorAll("#log li .data")].map((item) =>
        item.textContent
      ),
    };
  });
}

/**
 * Waits, at most `timeout` ms, until the broadcast page shows `state` and
 * the Redis row shows `backplane`; on timeout, says what it showed and what
 * the demo logged.
 */
async function untilBroadcast(
  page: Page,
  demo: DemoProcess,
  state: string,
  backplane: string,
  timeout = 5000,
): Promise<void> {
  try {
    await page.waitForFunction(
      ([state, backplane]) => {
        const shown = document.getElementById("backplane")!;
        return document.getElementById("state")!.dataset.state === state &&
          shown.textContent === backplane &&
          !document.getElementById("backplane-row")!.hidden;
      },
      [state, backplane],
      { timeout },
    );
  } catch (error) {
    throw new Error(
      `The page did not show ${state}/${backplane} within ${timeout} ms: ${
        JSON.stringify(await broadcastView(page))
      }\ndemo log:\n${demo.logs.join("\n")}`,
      { cause: error },
    );
  }
}

/**
 * Sends `message` from the broadcast page's form: the response's status,
 * how long it took in ms, and its text.
 */
async function sendFromPage(
  page: Page,
  message: string,
): Promise<{ status: number; ms: number; body: string }> {
  await page.fill("input[name=text]", message);
  const start = performance.now();
  const [response] = await Promise.all([
    page.waitForResponse(
      (response) => new URL(response.url()).pathname === "/broadcast/messages",
      { timeout: 8000 },
    ),
    page.click("#send"),
  ]);
  const ms = performance.now() - start;
  return { status: response.status(), ms, body: await response.text() };
}

/** Waits, at most `timeout` ms, until the page's log shows `message`. */
async function untilLogged(
  page: Page,
  message: string,
  timeout = 5000,
): Promise<void> {
  await page.waitForFunction(
    (message) =>
      [...document.querySelectorAll("#log li .data")].some((item) =>
        item.textContent === message
      ),
    message,
    { timeout },
  );
}

/** Counts the requests the page makes to `/sse`. */
function countStreams(page: Page): () => number {
  let count = 0;
  page.on("request", (request) => {
    if (new URL(request.url()).pathname === "/sse") count++;
  });
  return () => count;
}

Deno.test({
  name: "The demo page streams ticks in headless Chromium",
  ignore: CHROME.ignore,
  async fn(t) {
    CHROME.check();
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const open = async (viewport = { width: 1000, height: 800 }) => {
        const page = await browser!.newPage({ viewport });
        const errors: string[] = [];
        page.on("pageerror", (error) => errors.push(error.message));
        return { page, errors };
      };

      await t.step(
        "shows every tick, closes on complete and does not reconnect",
        async () => {
          await withDemo(async ({ demo, url }) => {
            const { page, errors } = await open();
            try {
              const streams = countStreams(page);
              await page.goto(url.href);
              assert.equal(await text(page, "#state"), "idle");
              await startStream(page, 6, 50);
              await page.waitForSelector("#state[data-state=complete]");

              assert.equal(await text(page, "#progress-text"), "6 / 6");
              assert.deepEqual(
                await page.$eval(
                  "#progress",
                  (bar: HTMLProgressElement) => [bar.value, bar.max],
                ),
                [6, 6],
              );
              assert.match(
                await text(page, "#latest"),
                /^#6 at \d\d:\d\d:\d\d\.\d{3}$/,
              );
              assert.equal(await text(page, "#detail"), "Sent all 6 ticks");
              const rows = await logRows(page);
              assert.deepEqual(
                rows.map(([name, id]) => `${name} ${id}`),
                [
                  "connected –",
                  "tick 1",
                  "tick 2",
                  "tick 3",
                  "tick 4",
                  "tick 5",
                  "tick 6",
                  "complete 6",
                ],
              );
              assert.deepEqual(
                rows.slice(1, 7).map(([, , data]) => JSON.parse(data).i),
                [1, 2, 3, 4, 5, 6],
              );
              assert.equal(await page.isDisabled("#start"), false);
              assert.equal(await page.isDisabled("#stop"), true);

              // The server asked for `retry: 2000`: a browser that reconnects
              // after the stream ends would be back within this wait.
              await delay(2500);
              assert.equal(streams(), 1, "one request to /sse");
              assert.equal(demo.stats.opened, 1, "one stream on the server");
              assert.equal(await text(page, "#connections"), "1");
              assert.equal(await text(page, "#state"), "complete");

              await page.screenshot({
                path: new URL("demo.png", ARTIFACTS).pathname,
                fullPage: true,
              });
              if (Deno.env.get("UPDATE_SCREENSHOT") === "1") {
                await page.screenshot({
                  path: README_SCREENSHOT.pathname,
                  fullPage: true,
                });
              }
              assert.deepEqual(errors, []);
            } finally {
              await page.close();
            }
          });
        },
      );

      await t.step(
        "Stop closes the stream and the server stops its producer",
        async () => {
          await withDemo(async ({ demo, url, logged }) => {
            const { page, errors } = await open();
            try {
              await page.goto(url.href);
              await startStream(page, 1000, 50);
              await page.waitForFunction(() =>
                document.querySelector<HTMLProgressElement>("#progress")!
                  .value >= 2
              );
              await page.click("#stop");
              assert.equal(await text(page, "#state"), "stopped");
              await logged(/sse closed #1 client left, sent \d+ ticks/);
              assert.equal(demo.stats.open, 0);
              assert.deepEqual(errors, []);
            } finally {
              await page.close();
            }
          });
        },
      );

      await t.step(
        "shows a lost connection, retries and resumes after the last id",
        async () => {
          await withDemo(async ({ demo, url }) => {
            const { page, errors } = await open();
            try {
              await page.goto(url.href);
              await startStream(page, 4, 50);
              await page.waitForSelector("#state[data-state=retrying]");
              assert.match(await text(page, "#detail"), /reconnecting.*\(2\)/);
              await page.waitForSelector("#state[data-state=complete]", {
                timeout: 10_000,
              });
              const rows = await logRows(page);
              assert.deepEqual(
                rows.map(([name, id]) => `${name} ${id}`),
                [
                  "connected –",
                  "tick 1",
                  "tick 2",
                  "error –",
                  "connected 2",
                  "tick 3",
                  "tick 4",
                  "complete 4",
                ],
              );
              assert.equal(
                JSON.parse(rows[4][2]).message,
                "Resuming after tick 2 of 4",
              );
              assert.equal(await text(page, "#progress-text"), "4 / 4");
              assert.equal(await text(page, "#connections"), "2");
              assert.equal(demo.stats.opened, 2);
              assert.deepEqual(errors, []);
            } finally {
              await page.close();
            }
          }, { wrap: cutFirstStream(2) });
        },
      );

      await t.step(
        "shows that the browser gives up on a refused stream",
        async () => {
          await withDemo(async ({ url }) => {
            const { page, errors } = await open();
            try {
              await page.goto(url.href);
              // Bypass the form's own limits to get the server's 400.
              await page.$eval(
                "input[name=count]",
                (input) => (input as HTMLInputElement).removeAttribute("max"),
              );
              await startStream(page, 20000, 50);
              await page.waitForSelector("#state[data-state=closed]");
              assert.match(await text(page, "#detail"), /does not retry/);
              assert.deepEqual(
                (await logRows(page)).map((row) => row.join(" ")),
                ["error – stream refused, not retrying"],
              );
              assert.equal(await page.isDisabled("#start"), false);
              assert.deepEqual(errors, []);
            } finally {
              await page.close();
            }
          });
        },
      );

      await t.step("renders event data as text, never as HTML", async () => {
        await withDemo(async ({ url }) => {
          const { page, errors } = await open();
          try {
            const markup = '<img src="x" onerror="window.pwned = true">';
            await page.route("**/sse?*", (route) =>
              route.fulfill({
                status: 200,
                contentType: "text/event-stream",
                body: `event: tick\nid: 1\ndata: ${markup}\n\n` +
                  `event: complete\ndata: {"message":"${
                    markup.replaceAll('"', '\\"')
                  }"}\n\n`,
              }));
            await page.goto(url.href);
            await startStream(page, 1, 50);
            await page.waitForSelector("#state[data-state=complete]");
            assert.equal(await page.locator("img").count(), 0);
            assert.equal(
              await page.evaluate(() => "pwned" in globalThis),
              false,
            );
            assert.equal((await logRows(page))[0][2], markup);
            assert.equal(await text(page, "#detail"), markup);
            assert.deepEqual(errors, []);
          } finally {
            await page.close();
          }
        });
      });

      await t.step("fits a phone screen", async () => {
        await withDemo(async ({ url }) => {
          const { page, errors } = await open({ width: 390, height: 844 });
          try {
            await page.goto(url.href);
            await startStream(page, 5, 20);
            await page.waitForSelector("#state[data-state=complete]");
            assert.equal(await text(page, "#progress-text"), "5 / 5");
            const overflow = await page.evaluate(() =>
              document.documentElement.scrollWidth - globalThis.innerWidth
            );
            assert.ok(overflow <= 0, `${overflow} px wider than the screen`);
            await page.screenshot({
              path: new URL("demo-phone.png", ARTIFACTS).pathname,
              fullPage: true,
            });
            assert.deepEqual(errors, []);
          } finally {
            await page.close();
          }
        });
      });

      await t.step(
        "broadcast: a message sent in one tab appears in every tab",
        async () => {
          await withDemo(async ({ demo, url }) => {
            const tabs = [await open(), await open()];
            try {
              for (const { page } of tabs) {
                await page.goto(new URL("/broadcast", url).href);
                await page.waitForSelector("#state[data-state=open]");
              }
              for (const { page } of tabs) {
                await page.waitForFunction(() =>
                  document.getElementById("clients")!.textContent === "2"
                );
              }
              assert.equal(demo.stats.broadcastClients, 2);
              const [sender, other] = tabs.map(({ page }) => page);
              await sender.fill("input[name=text]", "<b>hello</b> tabs");
              await sender.click("#send");
              for (const page of [sender, other]) {
                await page.waitForSelector("#log li");
                assert.equal(
                  await text(page, "#log li .data"),
                  "<b>hello</b> tabs",
                );
                assert.equal(await page.locator("#log li b").count(), 0);
              }
              assert.equal(await sender.inputValue("input[name=text]"), "");
              await other.screenshot({
                path: new URL("broadcast.png", ARTIFACTS).pathname,
              });

              await sender.close();
              await other.waitForFunction(() =>
                document.getElementById("clients")!.textContent === "1"
              );
              for (const { errors } of tabs) assert.deepEqual(errors, []);
            } finally {
              for (const { page } of tabs) await page.close();
            }
          });
        },
      );

      await t.step(
        "broadcast: two servers sharing a backplane make one room",
        async () => {
          const name = `ssekit-browser-${crypto.randomUUID()}`;
          const on = (fn: Parameters<typeof withDemo>[0]) =>
            withDemo(fn, { backplane: new BroadcastChannelBackplane(name) });
          await on(({ url: one }) =>
            on(async ({ url: two }) => {
              const tabs = [await open(), await open(), await open()];
              try {
                const [a, b, c] = tabs.map(({ page }) => page);
                for (
                  const [page, url] of [[a, one], [b, two], [c, two]] as const
                ) {
                  await page.goto(new URL("/broadcast", url).href);
                  await page.waitForSelector("#state[data-state=open]");
                }
                // Each page counts the clients of its own server.
                for (
                  const [page, count] of [[a, "1"], [b, "2"], [c, "2"]] as const
                ) {
                  await page.waitForFunction(
                    (count) =>
                      document.getElementById("clients")!.textContent === count,
                    count,
                  );
                }
                await b.fill("input[name=text]", "from the second server");
                await b.click("#send");
                for (const page of [a, b, c]) {
                  await page.waitForSelector("#log li");
                  assert.equal(
                    await text(page, "#log li .data"),
                    "from the second server",
                  );
                }
                for (const { errors } of tabs) assert.deepEqual(errors, []);
              } finally {
                for (const { page } of tabs) await page.close();
              }
            })
          );
        },
      );

      await t.step(
        "resumes with a non-ASCII Last-Event-ID as the browser sends it",
        async () => {
          // A 2-byte and a 3-byte UTF-8 character, then a 4-byte (astral)
          // one: Chromium sends the id back as UTF-8, which Deno hands over
          // one byte per character ("Ã©1-…") until lastEventId() decodes it.
          const ids = ["é1-ü✓", "😀2-é"];
          const received: (string | undefined)[] = [];
          const headers: (string | null)[] = [];
          const html = `<!doctype html>
<meta charset="utf-8">
<title>Last-Event-ID</title>
<script>
  const seen = window.seen = [];
  const source = new EventSource("/events");
  source.addEventListener("message", (event) => {
    seen.push(["message", event.data, event.lastEventId]);
  });
  source.addEventListener("done", (event) => {
    seen.push(["done", event.data, event.lastEventId]);
    source.close();
    window.finished = true;
  });
</script>`;
          await withServer((request) => {
            const { pathname } = new URL(request.url);
            if (pathname === "/") {
              return new Response(html, {
                headers: { "content-type": "text/html; charset=utf-8" },
              });
            }
            if (pathname !== "/events") {
              return new Response("Not found", { status: 404 });
            }
            const n = received.push(lastEventId(request));
            headers.push(request.headers.get("last-event-id"));
            const writer = new SseWriter({ signal: request.signal });
            if (n <= ids.length) {
              // Ends at once: to the browser, a dropped connection to retry
              // in 50 ms, with the id it saw last.
              writer.write({ retry: 50, id: ids[n - 1], data: `event ${n}` });
            } else {
              // Closed by the page; a browser that did reconnect would wait
              // an hour.
              writer.write({ event: "done", retry: 3_600_000, data: "done" });
            }
            writer.close();
            return writer.response;
          }, async (url) => {
            const { page, errors } = await open();
            try {
              await page.goto(url.href);
              await page.waitForFunction(
                () => (window as unknown as { finished?: true }).finished,
                undefined,
                { timeout: 5000 },
              );
              assert.deepEqual(
                received,
                [undefined, ...ids],
                `lastEventId() of each connection; the raw headers were ${
                  JSON.stringify(headers)
                }`,
              );
              assert.deepEqual(
                await page.evaluate(() =>
                  (window as unknown as { seen: string[][] }).seen
                ),
                [
                  ["message", "event 1", ids[0]],
                  ["message", "event 2", ids[1]],
                  ["done", "done", ids[1]],
                ],
              );
              await delay(300); // six retry periods
              assert.equal(received.length, 3, "no reconnect after done");
              assert.deepEqual(errors, []);
            } finally {
              await page.close();
            }
          });
        },
      );

      await t.step({
        name:
          "broadcast: the page shows when its server cannot reach Redis, and no false alarm",
        ignore: !REDIS_FOUND && !IN_CI,
        async fn() {
          assert.ok(REDIS_FOUND, "CI needs redis-server: .ci/run installs it");
          const redis = new Redis();
          const dirs: string[] = [];
          const newDir = async () => {
            dirs.push(await Deno.makeTempDir({ prefix: "ssekit-redis-" }));
            return dirs.at(-1)!;
          };
          let demo: DemoProcess | undefined;
          let tab: Awaited<ReturnType<typeof open>> | undefined;
          try {
            const dir = await newDir();
            await redis.start({ dir });
            demo = await startDemoProcess(["--redis", redis.url]);
            tab = await open();
            const { page } = tab;
            await page.goto(new URL("/broadcast", demo.origin).href);
            await untilBroadcast(page, demo, "open", "connected");
            const first = await sendFromPage(page, "before the outage");
            assert.equal(first.status, 201, first.body);
            await untilLogged(page, "before the outage");

            // A clean shutdown: Redis keeps its stream in its AOF.
            await redis.stop("SIGTERM");
            await untilBroadcast(page, demo, "degraded", "unreachable");
            assert.match(await text(page, "#detail"), /cannot reach Redis/);
            const refused = await sendFromPage(page, "while Redis is away");
            assert.equal(refused.status, 503);
            assert.ok(refused.ms < 1000, `answered in ${refused.ms} ms`);
            const refusal =
              "Service unavailable: this server cannot reach Redis now; the message was not sent";
            assert.equal(refused.body, `${refusal}\n`);
            await page.waitForFunction(
              (refusal) =>
                document.getElementById("detail")!.textContent?.trim() ===
                  refusal,
              refusal,
              { timeout: 2000 },
            );
            assert.equal(await page.isHidden("#notice"), true);

            // Back with its data: nothing was missed, so no reset.
            await redis.start({ dir });
            await untilBroadcast(page, demo, "open", "connected", 8000);
            const second = await sendFromPage(page, "after the outage");
            assert.equal(second.status, 201, second.body);
            await untilLogged(page, "after the outage");
            assert.equal(
              await page.isHidden("#notice"),
              true,
              `a false alarm: ${await text(page, "#notice")}`,
            );
            assert.deepEqual(
              (await broadcastView(page)).log,
              ["after the outage", "before the outage"],
            );

            // A crash, and back without its data: the page is told.
            await redis.stop("SIGKILL");
            await redis.start({ dir: await newDir() });
            try {
              await page.waitForSelector("#notice", {
                state: "visible",
                timeout: 8000,
              });
            } catch (error) {
              throw new Error(
                `No reset shown: ${
                  JSON.stringify(await broadcastView(page))
                }\ndemo log:\n${demo.logs.join("\n")}`,
                { cause: error },
              );
            }
            assert.match(
              await text(page, "#notice"),
              /^Some messages may be missing: /,
            );
            await untilBroadcast(page, demo, "open", "connected", 8000);
            const third = await sendFromPage(page, "after the reset");
            assert.equal(third.status, 201, third.body);
            await untilLogged(page, "after the reset");
            assert.deepEqual(tab.errors, []);
          } finally {
            await tab?.page.close();
            const stopped = demo === undefined ? undefined : await demo.stop();
            await redis.stop("SIGKILL");
            for (const dir of dirs) await Deno.remove(dir, { recursive: true });
            if (stopped !== undefined) {
              assert.equal(stopped.code, 0, stopped.log);
              assert.match(
                stopped.log,
                /INFO {2}broadcast shared through Redis at redis:/,
              );
              assert.match(
                stopped.log,
                /WARN {2}broadcast: Redis at redis:\S+ is unreachable: /,
              );
              assert.doesNotMatch(stopped.log, /waiting for Redis/);
            }
          }
        },
      });

      await t.step({
        name:
          "broadcast: a demo started before Redis waits for it, and its tick page streams",
        ignore: !REDIS_FOUND && !IN_CI,
        async fn() {
          assert.ok(REDIS_FOUND, "CI needs redis-server: .ci/run installs it");
          const redis = new Redis(); // its port is free: nothing listens yet
          let demo: DemoProcess | undefined;
          let tab: Awaited<ReturnType<typeof open>> | undefined;
          try {
            demo = await startDemoProcess(["--redis", redis.url]);
            await demo.logged(
              new RegExp(
                `WARN {2}broadcast: waiting for Redis at ${redis.url}$`,
              ),
            );
            tab = await open();
            const { page } = tab;
            await page.goto(new URL("/broadcast", demo.origin).href);
            await untilBroadcast(page, demo, "degraded", "waiting");
            assert.match(await text(page, "#detail"), /waiting for Redis/);

            const ticks = await fetch(
              `${demo.origin}/sse?count=2&intervalMs=10`,
              { signal: AbortSignal.timeout(5000) },
            );
            assert.equal(ticks.status, 200);
            const stream = await ticks.text();
            assert.match(stream, /^event: connected\n/);
            assert.match(stream, /\nid: 1\n[^]*\nid: 2\n/);
            assert.match(stream, /event: complete\ndata: .*"total":2/);

            await redis.start();
            await untilBroadcast(page, demo, "open", "connected", 8000);
            await demo.logged(
              new RegExp(
                `INFO {2}broadcast shared through Redis at ${redis.url}$`,
              ),
            );
            const sent = await sendFromPage(page, "now that Redis is here");
            assert.equal(sent.status, 201, sent.body);
            await untilLogged(page, "now that Redis is here");
            assert.equal(await page.isHidden("#notice"), true);
            assert.deepEqual(tab.errors, []);
          } finally {
            await tab?.page.close();
            const stopped = demo === undefined ? undefined : await demo.stop();
            await redis.stop();
            if (stopped !== undefined) {
              assert.equal(stopped.code, 0, stopped.log);
            }
          }
        },
      });
    } finally {
      await browser?.close();
    }
  },
});
