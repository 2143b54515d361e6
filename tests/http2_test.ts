/// <reference lib="dom" />
// `demo.ts --cert --key`: HTTPS with HTTP/2 and HTTP/1.1, and what HTTP/2
// is for: ten event streams from one page in headless Chromium tick at
// once over one connection, where HTTP/1.1 lets six through and holds the
// rest until one ends.
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { CHROMIUM, INSTALL_CHROMIUM, launchChromium } from "./chromium_util.ts";
import { assertOneByOne, startDemoProcess, withDemo } from "./demo_util.ts";
import { StreamReader } from "./stream_reader.ts";
import { needs } from "./util.ts";

const openssl = await new Deno.Command("openssl", { args: ["version"] })
  .output().then((out) => out.success, () => false);
const TOOLS = needs(
  "the HTTP/2 test",
  { openssl, chromium: CHROMIUM !== undefined },
  `apt-get install openssl chromium (.ci/run does); or ${INSTALL_CHROMIUM}`,
);

/** A self-signed certificate for 127.0.0.1, valid for a day, in `dir`. */
async function makeCertificate(
  dir: string,
): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/cert.pem`;
  const key = `${dir}/key.pem`;
  const { success, stderr } = await new Deno.Command("openssl", {
    args: [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt"],
      ...["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"],
      ...["-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1"],
      ...["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
      // A leaf, not a CA: rustls refuses a CA certificate as a server's.
      ...["-addext", "basicConstraints=critical,CA:FALSE"],
    ],
    stdout: "null",
  }).output();
  assert.ok(success, new TextDecoder().decode(stderr));
  return { cert, key };
}

/** What a page saw of ten tick streams that it opened at once. */
interface TenStreams {
  /** Ticks of each stream `observeMs` after they were opened. */
  early: number[];
  /** When each got its first tick and its `complete`, ms after opening. */
  first: number[];
  done: number[];
  /** The protocol and the connection of each response, as Chromium says. */
  responses: { protocol: string; connection: number }[];
}

const COUNT = 10;
const INTERVAL_MS = 100;
/** When the streams are looked at: most of the way through the first ones. */
const OBSERVE_MS = 700;

/** Opens ten tick streams from the demo's page at `origin`, to the end. */
async function tenStreams(
  browser: Browser,
  origin: string,
): Promise<TenStreams> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  try {
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    const responses: TenStreams["responses"] = [];
    cdp.on("Network.responseReceived", ({ response }) => {
      if (!new URL(response.url).pathname.startsWith("/sse")) return;
      responses.push({
        protocol: response.protocol ?? "",
        connection: response.connectionId,
      });
    });
    await page.goto(`${origin}/`);
    const seen = await page.evaluate(
      async ([count, intervalMs, observeMs]) => {
        const sleep = (ms: number) =>
          new Promise((resolve) => setTimeout(resolve, ms));
        const start = performance.now();
        const streams = Array.from({ length: 10 }, () => ({
          ticks: 0,
          first: -1,
          done: -1,
        }));
        const sources = streams.map((stream, i) => {
          // A query of its own each, so that no cache ties them together.
          const source = new EventSource(
            `/sse?count=${count}&intervalMs=${intervalMs}&stream=${i}`,
          );
          source.addEventListener("tick", () => {
            if (stream.ticks++ === 0) stream.first = performance.now() - start;
          });
          source.addEventListener("complete", () => {
            stream.done = performance.now() - start;
            source.close();
          });
          return source;
        });
        await sleep(observeMs);
        const early = streams.map((stream) => stream.ticks);
        // Bounded: ten streams of one second each end within five, even
        // six at a time.
        while (
          streams.some((s) => s.done < 0) && performance.now() - start < 8000
        ) {
          await sleep(50);
        }
        for (const source of sources) source.close();
        return { early, streams };
      },
      [COUNT, INTERVAL_MS, OBSERVE_MS],
    );
    return {
      early: seen.early,
      first: seen.streams.map((stream) => Math.round(stream.first)),
      done: seen.streams.map((stream) => Math.round(stream.done)),
      responses,
    };
  } finally {
    await context.close();
  }
}

Deno.test({
  name:
    "The demo serves HTTP/2 over TLS, and ten streams from one page tick at once",
  ignore: TOOLS.ignore,
  async fn(t) {
    TOOLS.check();
    const dir = await Deno.makeTempDir({ prefix: "ssekit-tls-" });
    let browser: Browser | undefined;
    try {
      const files = await makeCertificate(dir);
      const cert = await Deno.readTextFile(files.cert);
      const demo = await startDemoProcess([
        "--cert",
        files.cert,
        "--key",
        files.key,
      ]);
      try {
        const { hostname, port } = new URL(demo.origin);
        assert.equal(demo.origin, `https://127.0.0.1:${port}`);

        await t.step(
          "TLS offers h2 and http/1.1 (ALPN); both serve",
          async () => {
            for (
              const [offered, chosen] of [[["h2", "http/1.1"], "h2"], [[
                "http/1.1",
              ], "http/1.1"]] as const
            ) {
              const conn = await Deno.connectTls({
                hostname,
                port: +port,
                caCerts: [cert],
                alpnProtocols: [...offered],
              });
              try {
                assert.equal((await conn.handshake()).alpnProtocol, chosen);
                if (chosen === "http/1.1") {
                  await conn.write(new TextEncoder().encode(
                    `HEAD /sse HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`,
                  ));
                  const head = new TextDecoder().decode(
                    (await conn.readable.getReader().read()).value,
                  );
                  assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
                  assert.match(head, /\r\ncontent-type: text\/event-stream/);
                }
              } finally {
                conn.close();
              }
            }
          },
        );

        await t.step(
          "HEAD over HTTP/2: headers and a length, no body",
          async () => {
            // Deno 2.9.6 ends an HTTP/2 answer to HEAD that has a body with a
            // protocol error: the demo answers with the length instead.
            const client = Deno.createHttpClient({
              caCerts: [cert],
              http1: false,
            });
            try {
              for (const path of ["/", "/metrics", "/sse", "/nope"]) {
                const head = await fetch(`${demo.origin}${path}`, {
                  method: "HEAD",
                  client,
                });
                const get = await fetch(`${demo.origin}${path}`, { client });
                await get.body?.cancel();
                assert.equal(await head.text(), "");
                assert.equal(head.status, get.status);
                assert.equal(
                  head.headers.get("content-type"),
                  get.headers.get("content-type"),
                );
                if (path === "/" || path === "/nope") {
                  assert.equal(
                    head.headers.get("content-length"),
                    get.headers.get("content-length"),
                  );
                }
              }
            } finally {
              client.close();
            }
          },
        );

        await t.step(
          "over HTTP/2, with Accept-Encoding: gzip, br, ticks arrive as written",
          async () => {
            const client = Deno.createHttpClient({
              caCerts: [cert],
              http1: false,
            });
            try {
              const response = await fetch(
                `${demo.origin}/sse?count=5&intervalMs=300`,
                {
                  client,
                  headers: { "accept-encoding": "gzip, br" },
                },
              );
              assert.equal(response.headers.get("content-encoding"), null);
              const reader = new StreamReader(response.body!);
              await reader.rest();
              assertOneByOne(reader, 5, 300, 250);
            } finally {
              client.close();
            }
          },
        );

        browser = await launchChromium();
        await t.step(
          "Chromium: ten streams over one HTTP/2 connection, all at once",
          async () => {
            const seen = await tenStreams(browser!, demo.origin);
            const why = JSON.stringify(seen);
            assert.equal(seen.responses.length, 10, why);
            assert.deepEqual(
              new Set(seen.responses.map((r) => r.protocol)),
              new Set(["h2"]),
              why,
            );
            assert.equal(
              new Set(seen.responses.map((r) => r.connection)).size,
              1,
              why,
            );
            for (const ticks of seen.early) assert.ok(ticks >= 3, why);
            assert.ok(seen.done.every((ms) => ms > 0), why);
          },
        );
      } finally {
        await demo.stop();
      }

      await t.step(
        "Chromium over HTTP/1.1: six streams, and the seventh waits",
        async () => {
          await withDemo(async ({ url }) => {
            const seen = await tenStreams(browser!, url.origin);
            const why = JSON.stringify(seen);
            assert.equal(seen.responses.length, 10, why);
            assert.deepEqual(
              new Set(seen.responses.map((r) => r.protocol)),
              new Set(["http/1.1"]),
              why,
            );
            assert.equal(
              new Set(seen.responses.map((r) => r.connection)).size,
              6,
              why,
            );
            assert.equal(
              seen.early.filter((ticks) => ticks >= 3).length,
              6,
              why,
            );
            assert.equal(
              seen.early.filter((ticks) => ticks === 0).length,
              4,
              why,
            );
            // The four start when the first six have ended.
            const firstDone = Math.min(...seen.done.filter((ms) => ms > 0));
            const late = seen.first.filter((_, i) => seen.early[i] === 0);
            assert.equal(late.length, 4, why);
            for (const ms of late) assert.ok(ms >= firstDone, why);
          });
        },
      );
    } finally {
      await browser?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
