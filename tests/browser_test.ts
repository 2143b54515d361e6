/// <reference lib="dom" />
// The demo page in real headless Chromium (Debian's `chromium`), driven by
// playwright-core. Screenshots go to tests/artifacts/; with
// UPDATE_SCREENSHOT=1 the laptop one also replaces static/screenshot.png, the
// README's picture.
import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import { BroadcastChannelBackplane } from "../mod.ts";
import { cutFirstStream, withDemo } from "./demo_util.ts";
import { delay } from "./util.ts";

/** Debian's chromium, or the first Chromium on PATH; `undefined` if none. */
function findChromium(): string | undefined {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter(Boolean);
  const candidates = [
    Deno.env.get("CHROMIUM_PATH"),
    "/usr/bin/chromium",
    ...["chromium", "chromium-browser"].flatMap((name) =>
      dirs.map((dir) => `${dir}/${name}`)
    ),
  ];
  return candidates.find((path) => {
    try {
      return path !== undefined && Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
}

const CHROMIUM = findChromium();
const IN_CI = Deno.env.get("CI") === "true";
if (CHROMIUM === undefined && !IN_CI) {
  console.warn(
    "Skipping the browser test: no Chromium found (install Debian's " +
      "`chromium`, or set CHROMIUM_PATH). Under CI=true it fails instead.",
  );
}

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
  ignore: CHROMIUM === undefined && !IN_CI,
  async fn(t) {
    assert.ok(
      CHROMIUM,
      "CI needs Chromium: .ci/run installs Debian's `chromium` with apt",
    );
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      });
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
    } finally {
      await browser?.close();
    }
  },
});
