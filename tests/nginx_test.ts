// The demo behind Debian's nginx, with the config that the README shows:
// events pass one by one (gzipped), keep-alive comments outlast
// `proxy_read_timeout`, and Last-Event-ID goes through.
import assert from "node:assert/strict";
import {
  assertOneByOne,
  startDemoProcess,
  tickDelays,
  withDemo,
} from "./demo_util.ts";
import { found, type Nginx, startNginx } from "./nginx_util.ts";
import { StreamReader } from "./stream_reader.ts";
import { needs, within } from "./util.ts";

const NGINX = needs(
  "the nginx test",
  { nginx: found },
  "apt-get install nginx; .ci/run does",
);

/** The timeout the test gives nginx, and the demo's keep-alive below it. */
const READ_TIMEOUT_S = 2;
const KEEP_ALIVE_MS = 500;

/**
 * The README's nginx config (the first `nginx` block of "Deploying"), with
 * the test's ports and read timeout, and two locations of its own for the
 * controls: one that ignores `x-accel-buffering`, one in front of a demo
 * with keep-alive off. Each change must apply exactly once, so that a
 * README that no longer says the same fails here.
 */
function readmeConfig(
  readme: string,
  listen: number,
  demo: number,
  quietDemo: number,
): string {
  const deploying = readme.slice(readme.indexOf("\n## Deploying\n"));
  let config = deploying.match(/```nginx\n([^`]*)```/)![1];
  const change = (from: string, to: string) => {
    assert.equal(
      config.split(from).length,
      2,
      `the README's config has ${from}`,
    );
    config = config.replace(from, to);
  };
  change("listen 80;", `listen 127.0.0.1:${listen};`);
  change("http://127.0.0.1:5000;", `http://127.0.0.1:${demo};`);
  change("proxy_read_timeout 60s;", `proxy_read_timeout ${READ_TIMEOUT_S}s;`);
  change(
    "  location / {",
    `  location /ignored/ {
    proxy_ignore_headers X-Accel-Buffering;
    proxy_pass http://127.0.0.1:${demo}/;
  }
  location /quiet/ {
    proxy_pass http://127.0.0.1:${quietDemo}/;
  }
  location / {`,
  );
  return config;
}

/** Reads `path` through nginx with `Accept-Encoding: gzip, br`. */
async function read(
  nginx: Nginx,
  path: string,
  headers: Record<string, string> = {},
): Promise<
  { response: Response; reader: StreamReader; done: Promise<unknown> }
> {
  const response = await fetch(`http://127.0.0.1:${nginx.port}${path}`, {
    headers: { "accept-encoding": "gzip, br", ...headers },
  });
  const reader = new StreamReader(response.body!);
  // A stream that nginx cuts ends without its last chunk: an error here.
  const done = within(reader.rest().catch((error) => error), 10_000, path);
  return { response, reader, done };
}

Deno.test({
  name: "The demo streams through nginx with the README's config",
  ignore: NGINX.ignore,
  async fn(t) {
    NGINX.check();
    const demo = await startDemoProcess(["--keep-alive", `${KEEP_ALIVE_MS}`]);
    try {
      await withDemo(async ({ url: quiet }) => {
        const readme = await Deno.readTextFile(
          new URL("../README.md", import.meta.url),
        );
        const nginx = await startNginx({
          http: (port) =>
            readmeConfig(readme, port, +new URL(demo.origin).port, +quiet.port),
        });
        try {
          await t.step(
            "ticks arrive one by one, gzipped; without x-accel-buffering, at the end",
            async () => {
              const path = "/sse?count=5&intervalMs=300";
              const [direct, ignored] = await Promise.all([
                read(nginx, path),
                read(nginx, `/ignored${path}`),
              ]);
              await Promise.all([direct.done, ignored.done]);
              assert.equal(
                direct.response.headers.get("content-encoding"),
                "gzip",
              );
              assertOneByOne(direct.reader, 5, 300, 250);
              assert.equal(
                ignored.response.headers.get("content-encoding"),
                "gzip",
              );
              const held = tickDelays(ignored.reader);
              assert.equal(held.length, 5);
              assert.ok(held[0] >= 900, `held back until the end: ${held}`);
            },
          );

          await t.step(
            `a stream quiet for 3 s outlasts proxy_read_timeout ${READ_TIMEOUT_S}s with keep-alive ${KEEP_ALIVE_MS} ms, and is cut without`,
            async () => {
              const path = "/sse?count=1&intervalMs=3000";
              const started = Date.now();
              const [kept, cut] = await Promise.all([
                read(nginx, path),
                read(nginx, `/quiet${path}`),
              ]);
              const [, error] = await Promise.all([kept.done, cut.done]);
              const comments = kept.reader.text.match(/^:\n/gm)?.length ?? 0;
              assert.ok(comments >= 4, `${comments} keep-alive comments`);
              assert.deepEqual(
                kept.reader.events.map((event) => event.event),
                ["connected", "tick", "complete"],
              );
              assert.deepEqual(
                cut.reader.events.map((event) => event.event),
                ["connected"],
                `cut: ${error}`,
              );
              assert.ok(Date.now() - started >= 3000);
              const timeouts = (await nginx.errors()).filter((line) =>
                /upstream timed out/.test(line)
              );
              assert.equal(timeouts.length, 1, timeouts.join("\n"));
            },
          );

          await t.step(
            "Last-Event-ID passes through: the stream resumes",
            async () => {
              const { reader, done } = await read(
                nginx,
                "/sse?count=4&intervalMs=20",
                { "last-event-id": "2" },
              );
              await done;
              assert.deepEqual(
                reader.events.map((event) =>
                  `${event.event} ${event.id ?? ""}`
                ),
                ["connected ", "tick 3", "tick 4", "complete "],
              );
              assert.equal(
                JSON.parse(reader.events[0].data).message,
                "Resuming after tick 2 of 4",
              );
            },
          );
          const errors = (await nginx.errors()).filter((line) =>
            !/upstream timed out/.test(line)
          );
          assert.deepEqual(errors, []);
        } finally {
          await nginx.stop();
        }
      }, { keepAlive: 0 });
    } finally {
      await demo.stop();
    }
  },
});
