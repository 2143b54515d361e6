// Clients that leave at the worst moment, against real Deno.serve servers:
// Deno may cancel a response stream synchronously, inside enqueue(), when its
// connection is already gone. Nothing in ssekit may throw then.
import assert from "node:assert/strict";
import { SseChannel, SseClosedError, sseResponse, SseWriter } from "../mod.ts";
import { delay, withServer } from "./util.ts";
import { startDemoProcess } from "./demo_util.ts";
import { runClient, script } from "../soak/_util.ts";
import type { ChurnResult } from "../soak/_client.ts";

const CYCLES = 200;
/**
 * Runs `cycles` connections to `path` from another process, one after
 * another, each leaving at a different point (the soak suite's churn client:
 * half a request, before the head, after it, mid-event, after some events).
 * In-process clients share the server's event loop and miss the timing that
 * crashed it.
 */
async function churn(url: URL, path: string, cycles = CYCLES): Promise<void> {
  const result = await runClient<ChurnResult>(
    script(
      "_client.ts",
      "churn",
      "--port",
      url.port,
      "--path",
      path,
      "--cycles",
      `${cycles}`,
      "--lanes",
      "1",
    ),
  );
  assert.equal(result.done, cycles);
}

/** Waits, at most 5 s, until `done()`; asserts that it happened. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await delay(10);
  assert.ok(done(), what);
}

/**
 * Serves `handler` and makes one client that reads the first chunk and
 * leaves. `onLeave` runs in an abort listener of `request.signal` added
 * before the handler's own: it acts on a stream whose connection is already
 * gone, before ssekit has heard, as a producer's timer firing at that moment
 * would. Resolves once the handler's writers are closed.
 */
async function leaveWhile(
  handler: (request: Request) => { response: Response; closed(): boolean },
  onLeave: () => void,
): Promise<void> {
  let closed: (() => boolean) | undefined;
  await withServer((request) => {
    request.signal.addEventListener("abort", onLeave, { once: true });
    const served = handler(request);
    closed = served.closed;
    return served.response;
  }, async (url) => {
    const controller = new AbortController();
    const response = await fetch(url, { signal: controller.signal });
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await reader.read().catch(() => {});
    await until(() => closed!(), "the stream closed");
  });
}

Deno.test("SseWriter closes cleanly when the stream dies inside its last enqueue", async () => {
  let writer!: SseWriter;
  await leaveWhile((request) => {
    writer = new SseWriter({ signal: request.signal, keepAlive: 0 });
    writer.comment("hello");
    return { response: writer.response, closed: () => writer.closed };
  }, () => {
    // Queued for a client that waits: the writer's own abort listener then
    // flushes it into a stream that Deno cancels inside enqueue().
    writer.write({ data: "bye" });
  });
  await assert.rejects(writer.write({ data: "late" }), SseClosedError);
});

Deno.test("sseResponse closes cleanly when the stream dies inside its last enqueue", async () => {
  let writer!: SseWriter;
  const errors: unknown[] = [];
  await leaveWhile((request) => {
    const response = sseResponse((w) => {
      writer = w;
      w.comment("hello");
      return new Promise((resolve) => w.signal.onabort = resolve);
    }, {
      signal: request.signal,
      keepAlive: 0,
      onError: (error) => errors.push(error),
    });
    return { response, closed: () => writer.closed };
  }, () => writer.write({ data: "bye" }));
  assert.deepEqual(errors, []);
});

Deno.test("SseChannel.close() holds when a client's stream dies inside enqueue", async () => {
  const channel = new SseChannel({ keepAlive: 0 });
  await leaveWhile((request) => ({
    response: channel.connect(request),
    closed: () => channel.size === 0,
  }), () => {
    channel.send({ data: "last words" });
    channel.close();
  });
  assert.equal(channel.closed, true);
});

Deno.test("SseWriter with request.signal survives clients that leave mid-write", async () => {
  let opened = 0;
  let closed = 0;
  await withServer((request) => {
    opened++;
    const writer = new SseWriter({ signal: request.signal, keepAlive: 0 });
    writer.signal.addEventListener("abort", () => closed++, { once: true });
    (async () => {
      for (let i = 0; !writer.closed; i++) {
        await writer.write({ id: i, data: "x".repeat(100) }).catch(() => {});
        await delay(1);
      }
    })();
    return writer.response;
  }, async (url) => {
    await churn(url, "/");
    await until(() => closed === opened, `${closed} of ${opened} closed`);
  });
  // Every fifth cycle sends half a request, which never reaches a handler.
  assert.equal(opened, CYCLES * 4 / 5);
});

Deno.test("sseResponse with request.signal survives clients that leave mid-write", async () => {
  let opened = 0;
  let finished = 0;
  const errors: unknown[] = [];
  await withServer((request) => {
    opened++;
    return sseResponse(async (writer) => {
      try {
        for (let i = 0;; i++) {
          await writer.write({ id: i, data: "y".repeat(100) });
          await delay(1);
        }
      } finally {
        finished++;
      }
    }, {
      signal: request.signal,
      keepAlive: 0,
      onError: (error) => errors.push(error),
    });
  }, async (url) => {
    await churn(url, "/");
    await until(() => finished === opened, `${finished} of ${opened} ended`);
  });
  assert.deepEqual(errors, [], "a departing client is not an error");
});

Deno.test("SseChannel survives clients that leave while it sends every millisecond", async () => {
  const channel = new SseChannel({ keepAlive: 5 });
  let sending = true;
  const sender = (async () => {
    for (let i = 0; sending; i++) {
      channel.send({ data: "z".repeat(i % 300) });
      await delay(1);
    }
  })();
  await withServer((request) => channel.connect(request), async (url) => {
    await churn(url, "/");
    await until(() => channel.size === 0, `${channel.size} clients left`);
  });
  sending = false;
  await sender;
  channel.close();
});

Deno.test("The demo process survives clients that leave mid-tick", async () => {
  const demo = await startDemoProcess(["--log-level", "warn"]);
  let stopped: { code: number; log: string } | undefined;
  try {
    const origin = new URL(demo.origin);
    await churn(origin, "/sse?count=1000&intervalMs=1");
    const after = await fetch(new URL("/sse?count=2&intervalMs=1", origin));
    assert.match(await after.text(), /event: complete\n/);
  } finally {
    stopped = await demo.stop();
  }
  assert.equal(stopped.code, 0);
  assert.doesNotMatch(stopped.log, /error|uncaught/i);
});
