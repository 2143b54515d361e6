// SseClient when things go wrong: refusals (500, 204, text/html), a server
// that sends a 10 MB line without a newline, connections refused again and
// again, a stream that goes silent (idleTimeout), and an abort or close() at
// each point of the client's life. The sanitizers check that nothing is
// left behind: no timer, no connection.
import assert from "node:assert/strict";
import { SseClient, type SseMessage, SseResponseError } from "../mod.ts";
import { delay, within, withServer } from "./util.ts";

/** Reads `client` to its end: the messages and what it threw, if anything. */
async function drain(client: SseClient) {
  const messages: SseMessage[] = [];
  try {
    for await (const message of client) messages.push(message);
  } catch (error) {
    return { messages, error };
  }
  return { messages, error: undefined };
}

/** Resolves once `client` is in `state`. */
function until(client: SseClient, state: string): Promise<void> {
  if (client.state === state) return Promise.resolve();
  return within(
    new Promise<void>((resolve) => {
      const check = () => {
        if (client.state !== state) return;
        client.removeEventListener("statechange", check);
        resolve();
      };
      client.addEventListener("statechange", check);
    }),
    5000,
    `the client ${state}`,
  );
}

Deno.test("SseClient stops on 500 and text/html with an error, on 204 quietly, and never retries", async () => {
  const requests: string[] = [];
  await withServer((request) => {
    const { pathname } = new URL(request.url);
    requests.push(pathname);
    if (pathname === "/500") return new Response("it broke", { status: 500 });
    if (pathname === "/204") return new Response(null, { status: 204 });
    return new Response("<h1>Sign in</h1>", {
      headers: { "content-type": "text/html; charset=utf-8" },
    });
  }, async (url) => {
    const read = (path: string) =>
      drain(new SseClient(new URL(path, url), { retry: 1 }));

    const failed = await read("/500");
    assert.ok(failed.error instanceof SseResponseError);
    assert.equal(
      failed.error.message,
      "Cannot read event stream: the server answered 500 Internal Server Error",
    );
    assert.equal(failed.error.status, 500);
    assert.equal(failed.error.body, "it broke");

    assert.deepEqual(await read("/204"), { messages: [], error: undefined });

    const html = await read("/page");
    assert.ok(html.error instanceof SseResponseError);
    assert.equal(
      html.error.message,
      'Cannot read event stream: the server answered with content-type "text/html; charset=utf-8", not "text/event-stream"',
    );
    assert.equal(html.error.body, "");
    assert.deepEqual(requests, ["/500", "/204", "/page"]);
  });
});

Deno.test("SseClient stops at a 10 MB line without a newline, having read a bounded part of it", async () => {
  let sent = 0;
  let cancelled = false;
  const piece = new TextEncoder().encode("x".repeat(65_536));
  await withServer(() =>
    new Response(
      new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("data: "));
        },
        pull(controller) {
          if (sent >= 10_000_000) return controller.close();
          sent += piece.length;
          controller.enqueue(piece);
        },
        cancel() {
          cancelled = true;
        },
      }, { highWaterMark: 0 }),
      { headers: { "content-type": "text/event-stream" } },
    ), async (url) => {
    let read = 0; // what the client took from its connection
    const client = new SseClient(url, {
      retry: 1,
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        const count = new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            read += chunk.length;
            controller.enqueue(chunk);
          },
        });
        return new Response(response.body!.pipeThrough(count), response);
      },
    });
    const { messages, error } = await drain(client);
    assert.deepEqual(messages, []);
    assert.ok(error instanceof RangeError);
    assert.equal(
      error.message,
      "Cannot parse event stream: a line is longer than `maxEventSize` (1048576 UTF-16 code units)",
    );
    assert.equal(client.state, "closed");
    for (let i = 0; i < 100 && !cancelled; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(cancelled, "the server saw the client go");
    // The client stopped within a chunk of its limit; what the server sent
    // beyond that (a few MB) waited in socket buffers, never in the client.
    assert.ok(read <= 1_048_576 + 2 * piece.length, `it read ${read} bytes`);
  });
});

Deno.test("SseClient backs off with jitter on connections refused in a row, up to retryMax", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = probe.addr;
  probe.close(); // nothing listens there now: every connection is refused
  const client = new SseClient(`http://127.0.0.1:${port}/`, {
    retry: 4,
    retryMax: 40,
  });
  const waits: [failures: number, delay: number][] = [];
  const enough = Promise.withResolvers<void>();
  client.addEventListener("statechange", () => {
    if (client.state !== "retrying") return;
    waits.push([client.failures, client.retryDelay!]);
    assert.ok(client.error instanceof TypeError, String(client.error));
    if (waits.length === 8) enough.resolve();
  });
  await within(enough.promise, 5000, "eight refused connections");
  client.close();
  assert.equal(client.error, undefined);
  assert.deepEqual(waits.map(([failures]) => failures), [
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
  ]);
  assert.equal(waits[0][1], 4, "the first wait is retry, as EventSource's");
  for (const [failures, delay] of waits.slice(1)) {
    const doubled = Math.min(40, 4 * 2 ** (failures - 1));
    assert.ok(
      delay >= Math.max(4, doubled / 2) && delay <= doubled,
      `wait ${failures}: ${delay} ms, not within [${doubled / 2}, ${doubled}]`,
    );
  }

  // With reconnect: "never", the first refusal is the end.
  const once = await drain(
    new SseClient(`http://127.0.0.1:${port}/`, { reconnect: "never" }),
  );
  assert.ok(once.error instanceof TypeError);
});

Deno.test("SseClient stops at once on abort or close(), wherever it is, leaving nothing behind", async (t) => {
  let release = Promise.withResolvers<void>();
  await withServer(async (request) => {
    const { pathname } = new URL(request.url);
    if (pathname === "/slow") await release.promise; // never answers in time
    const body = pathname === "/retry"
      ? "retry: 60000\ndata: then a long wait\n\n" // then it ends
      : "data: first\n\n:";
    const stream = pathname === "/retry" ? body : new ReadableStream({ // stays open
      start: (c) => c.enqueue(new TextEncoder().encode(body)),
      cancel() {},
    });
    return new Response(stream, {
      headers: { "content-type": "text/event-stream" },
    });
  }, async (url) => {
    const points: [string, string, string][] = [
      ["before the first request", "/", "closed"],
      ["while connecting", "/slow", "connecting"],
      ["while open", "/open", "open"],
      ["while waiting to reconnect", "/retry", "retrying"],
    ];
    for (const [where, path, state] of points) {
      for (const how of ["abort", "close"] as const) {
        await t.step(`${how} ${where}`, async () => {
          release = Promise.withResolvers<void>();
          const controller = new AbortController();
          const reason = new Error(`stopped ${where}`);
          if (state === "closed") controller.abort(reason);
          const client = new SseClient(new URL(path, url), {
            signal: how === "abort" ? controller.signal : undefined,
          });
          const reading = drain(client);
          if (state === "closed") client.close();
          await until(client, state);
          if (how === "abort") controller.abort(reason);
          else client.close();
          const { error } = await within(reading, 5000, "the iteration");
          assert.equal(client.state, "closed");
          if (how === "abort" || (state === "closed" && how === "close")) {
            assert.equal(error, how === "abort" ? reason : undefined);
          } else {
            assert.equal(error, undefined);
          }
          release.resolve(); // the slow request may now be answered
        });
      }
    }
  });
});

Deno.test("SseClient closed by a statechange listener stays closed, with no timer left", async () => {
  for (const at of ["connecting", "open", "retrying"]) {
    let requests = 0;
    const client = new SseClient("http://localhost/", {
      retry: 1,
      fetch: () => {
        requests++;
        return Promise.resolve(
          new Response("data: x\n\n", {
            headers: { "content-type": "text/event-stream" },
          }),
        );
      },
      onMessage() {},
    });
    const seen: string[] = [];
    client.addEventListener("statechange", () => {
      seen.push(client.state);
      if (client.state === at || at === "connecting") client.close();
    });
    await until(client, "closed");
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 2));
    assert.equal(client.state, "closed", at);
    assert.equal(seen.at(-1), "closed", `${at}: ${seen}`);
    assert.ok(requests <= 1, `${at}: ${requests} requests`);
  }
});

Deno.test("SseClient caps a server's retry at the longest timer", async () => {
  const client = new SseClient("http://localhost/", {
    fetch: () =>
      Promise.resolve(
        new Response("retry: 99999999999999\n\n", {
          headers: { "content-type": "text/event-stream" },
        }),
      ),
  });
  await until(client, "retrying");
  assert.equal(client.retry, 2_147_483_647);
  assert.equal(client.retryDelay, 2_147_483_647);
  client.close(); // and the timer with it: the sanitizer checks
});

Deno.test("SseClient with idleTimeout takes a stream that goes silent for dead, lets it go and resumes", async () => {
  const lastIds: (string | null)[] = [];
  let silentGone!: () => void;
  const silentCancelled = new Promise<void>((resolve) => silentGone = resolve);
  await withServer((request) => {
    lastIds.push(request.headers.get("last-event-id"));
    const headers = { "content-type": "text/event-stream" };
    if (lastIds.length === 1) {
      // One event, then nothing at all, the connection held open: what a
      // client sees when the far end vanished without closing it.
      return new Response(
        new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode("id: 1\ndata: a\n\n"));
          },
          cancel: () => silentGone(),
        }),
        { headers },
      );
    }
    return new Response("id: 2\ndata: b\n\n", { headers });
  }, async (url) => {
    const client = new SseClient(url, {
      idleTimeout: 200,
      retry: 10,
      reconnect: "dropped",
    });
    let retryError: unknown;
    client.addEventListener("statechange", () => {
      if (client.state === "retrying") retryError = client.error;
    });
    const { messages, error } = await within(
      drain(client),
      5000,
      "the client read both streams",
    );
    assert.equal(error, undefined);
    assert.deepEqual(messages.map((m) => [m.data, m.lastEventId]), [
      ["a", "1"],
      ["b", "2"],
    ]);
    assert.deepEqual(lastIds, [null, "1"]);
    assert.ok(retryError instanceof DOMException);
    assert.equal(retryError.name, "TimeoutError");
    assert.equal(
      retryError.message,
      "Cannot read event stream: nothing came for 200 ms (`idleTimeout`)",
    );
    // The silent stream was cancelled, so its connection was let go.
    await within(silentCancelled, 5000, "the silent stream cancelled");
  });
});

Deno.test("SseClient with idleTimeout and reconnect: never stops with the timeout", async () => {
  await withServer(() =>
    new Response(
      new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(": hello\n\n"));
        },
      }),
      { headers: { "content-type": "text/event-stream" } },
    ), async (url) => {
    const { messages, error } = await within(
      drain(new SseClient(url, { idleTimeout: 100, reconnect: "never" })),
      5000,
      "the client stopped",
    );
    assert.deepEqual(messages, []);
    assert.ok(error instanceof DOMException && error.name === "TimeoutError");
  });
});

Deno.test("SseClient's idleTimeout does not count the time the app takes over its messages", async () => {
  let requests = 0;
  await withServer(() => {
    requests++;
    const encoder = new TextEncoder();
    let timer: ReturnType<typeof setTimeout>;
    return new Response(
      new ReadableStream({
        start(controller) {
          controller.enqueue(encoder.encode("data: 1\n\ndata: 2\n\n"));
          // The third comes after longer than idleTimeout, but while the
          // app still holds the second message untaken.
          timer = setTimeout(() => {
            controller.enqueue(encoder.encode("data: 3\n\n"));
            controller.close();
          }, 400);
        },
        cancel: () => clearTimeout(timer),
      }),
      { headers: { "content-type": "text/event-stream" } },
    );
  }, async (url) => {
    const client = new SseClient(url, {
      idleTimeout: 250,
      reconnect: "dropped",
    });
    const data: string[] = [];
    for await (const message of client) {
      data.push(message.data);
      if (data.length === 3) break; // the test has failed if 3 is not third
      // Holding the first message keeps the second untaken: the client
      // does not read meanwhile, so this is not idle time.
      if (message.data === "1") await delay(600);
    }
    assert.deepEqual(data, ["1", "2", "3"]);
    assert.equal(requests, 1, "no reconnect");
    assert.equal(client.error, undefined);
  });
});
