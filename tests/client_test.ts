// SseClient against real servers on loopback: a POST stream as LLM APIs
// send one, resume with Last-Event-ID and the server's retry, a channel's
// reset, the callbacks and the iteration, backpressure, and bad input.
import assert from "node:assert/strict";
import {
  lastEventId,
  SseChannel,
  SseClient,
  type SseClientState,
  type SseMessage,
  SseResponseError,
  SseWriter,
} from "../mod.ts";
import { within, withServer } from "./util.ts";

/** Every state the client goes through, from the first change on. */
function states(client: SseClient): string[] {
  const seen: string[] = [client.state];
  client.addEventListener("statechange", () => {
    const { state, retryDelay } = client;
    seen.push(state === "retrying" ? `retrying ${retryDelay}` : state);
  });
  return seen;
}

/** A chat-completion endpoint as LLM APIs stream one. */
async function chat(request: Request): Promise<Response> {
  if (request.headers.get("authorization") !== "Bearer test-key") {
    return Response.json({ error: { message: "Invalid API key" } }, {
      status: 401,
    });
  }
  const { messages, stream } = await request.json();
  assert.equal(request.method, "POST");
  assert.equal(request.headers.get("accept"), "text/event-stream");
  assert.equal(stream, true);
  const tokens = ["Hello", ",", " ", messages[0].content, "!"];
  const writer = new SseWriter({ signal: request.signal });
  (async () => {
    for (const content of tokens) {
      await writer.write({ data: { choices: [{ delta: { content } }] } });
    }
    await writer.write({ data: "[DONE]" });
    writer.close();
  })();
  return writer.response;
}

Deno.test("SseClient streams a POST with a JSON body and an Authorization header, as LLM APIs do", async () => {
  await withServer(chat, async (url) => {
    const ask = (key: string) =>
      new SseClient(new URL("/v1/chat/completions", url), {
        method: "POST",
        headers: {
          authorization: `Bearer ${key}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({
          messages: [{ role: "user", content: "world" }],
          stream: true,
        }),
        reconnect: "dropped",
      });
    const client = ask("test-key");
    const seen = states(client);
    let answer = "";
    for await (const message of client) {
      if (message.data === "[DONE]") break;
      answer += JSON.parse(message.data).choices[0].delta.content;
    }
    assert.equal(answer, "Hello, world!");
    assert.deepEqual(seen, ["connecting", "open", "closed"]);
    assert.equal(client.error, undefined);

    const refused = ask("wrong-key");
    await assert.rejects(
      async () => {
        for await (const _ of refused) assert.fail("no message");
      },
      (error: SseResponseError) => {
        assert.ok(error instanceof SseResponseError);
        assert.equal(
          error.message,
          "Cannot read event stream: the server answered 401 Unauthorized",
        );
        assert.equal(error.status, 401);
        assert.deepEqual(JSON.parse(error.body), {
          error: { message: "Invalid API key" },
        });
        return true;
      },
    );
    assert.equal(refused.state, "closed");
    assert.ok(refused.error instanceof SseResponseError);
  });
});

Deno.test("SseClient reconnects after the server's retry and resumes after the last id", async () => {
  const received: (string | undefined)[] = [];
  await withServer((request) => {
    received.push(lastEventId(request));
    const from = lastEventId(request) === "3b" ? 3 : 0;
    const writer = new SseWriter({ signal: request.signal });
    writer.write({ retry: 25 });
    for (let i = from + 1; i <= from + 3; i++) {
      writer.write({ event: "tick", id: i, data: String(i) });
    }
    // An id without data counts too: the next request resumes from it.
    if (from === 0) writer.write({ id: "3b" });
    writer.close(); // the server ends the stream: EventSource reconnects
    return writer.response;
  }, async (url) => {
    const client = new SseClient(url, { lastEventId: "0" });
    const seen = states(client);
    const ticks: string[] = [];
    for await (const message of client) {
      ticks.push(`${message.type} ${message.data} ${message.lastEventId}`);
      if (ticks.length === 6) break;
    }
    assert.deepEqual(ticks, [
      "tick 1 1",
      "tick 2 2",
      "tick 3 3",
      "tick 4 4",
      "tick 5 5",
      "tick 6 6",
    ]);
    assert.deepEqual(received, ["0", "3b"]);
    assert.deepEqual(seen, [
      "connecting",
      "open",
      "retrying 25",
      "connecting",
      "open",
      "closed",
    ]);
    assert.equal(client.retry, 25);
    assert.equal(client.lastEventId, "6");
  });
});

Deno.test("SseClient sends a non-ASCII Last-Event-ID as UTF-8, which lastEventId() decodes", async () => {
  const received: (string | undefined)[] = [];
  await withServer((request) => {
    received.push(lastEventId(request));
    const writer = new SseWriter();
    writer.write({ retry: 1, id: `😀é✓-${received.length}`, data: "x" });
    writer.close();
    return writer.response;
  }, async (url) => {
    const client = new SseClient(url, {
      lastEventId: "ü-0",
      headers: { "last-event-id": "not this one" }, // the client's to set
    });
    let n = 0;
    for await (const _ of client) if (++n === 3) break;
    assert.deepEqual(received, ["ü-0", "😀é✓-1", "😀é✓-2"]);
  });
});

Deno.test("SseClient surfaces a channel's reset, in order, so the app can reload", async () => {
  let channel = new SseChannel({ keepAlive: 0 });
  await withServer((request) => channel.connect(request), async (url) => {
    const resets: string[] = [];
    const got: SseMessage[] = [];
    const client = new SseClient(url, {
      retry: 10,
      onReset: (reason) => resets.push(reason),
    });
    const reading = (async () => {
      for await (const message of client) {
        got.push(message);
        if (message.data === "after") break;
      }
    })();
    const connected = async () => {
      for (let i = 0; i < 200 && channel.size === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(channel.size, 1);
    };
    await connected();
    channel.send({ data: "before" });
    // A restart: the new channel's epoch knows nothing of the client's id.
    const old = channel;
    channel = new SseChannel({ keepAlive: 0 });
    old.close();
    await connected();
    channel.send({ data: "after" });
    await within(reading, 5000, "the client's iteration");
    assert.deepEqual(got.map((m) => [m.type, m.data.slice(0, 12)]), [
      ["message", "before"],
      ["reset", '{"reason":"t'],
      ["message", "after"],
    ]);
    assert.equal(resets.length, 1);
    assert.match(
      resets[0],
      /^the last event id is from another run of this channel/,
    );
    // The reset carries the new position: the client resumes from it.
    assert.equal(got[2].lastEventId, got[1].lastEventId.replace(/0$/, "1"));
    channel.close();
  });
});

Deno.test("SseClient passes messages to onMessage, and is then not iterated", async () => {
  await withServer(() => {
    const writer = new SseWriter();
    writer.write({ event: "a", data: "1" });
    writer.write({ data: "2" });
    writer.close();
    return writer.response;
  }, async (url) => {
    const got: string[] = [];
    const closed = Promise.withResolvers<void>();
    const client = new SseClient(url, {
      reconnect: "never",
      onMessage: (message) => got.push(`${message.type} ${message.data}`),
    });
    client.addEventListener("statechange", () => {
      if (client.state === "closed") closed.resolve();
    });
    assert.throws(
      () => client[Symbol.asyncIterator](),
      new TypeError(
        "Cannot iterate SseClient: its messages go to `onMessage`",
      ),
    );
    await within(closed.promise, 5000, "the end of the stream");
    assert.deepEqual(got, ["a 1", "message 2"]);
    assert.equal(client.error, undefined);
  });
});

Deno.test("SseClient reads on only once the iteration has taken the messages", async () => {
  let pulls = 0;
  const fetch = () =>
    Promise.resolve(
      new Response(
        new ReadableStream({
          pull(controller) {
            controller.enqueue(
              new TextEncoder().encode(`data: ${++pulls}\n\n`),
            );
          },
        }, { highWaterMark: 0 }),
        { headers: { "content-type": "text/event-stream" } },
      ),
    );
  const client = new SseClient("http://localhost/", { fetch });
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 1));
  assert.equal(pulls, 1, "one chunk read while nobody takes its messages");
  const iterator = client[Symbol.asyncIterator]();
  assert.deepEqual(await iterator.next(), {
    done: false,
    value: { type: "message", data: "1", lastEventId: "" },
  });
  assert.equal((await iterator.next()).value?.data, "2");
  assert.ok(pulls <= 3, `${pulls} pulls`);
  await iterator.return!();
  assert.equal(client.state satisfies SseClientState, "closed");
  assert.throws(
    () => client[Symbol.asyncIterator](),
    new TypeError("Cannot iterate SseClient: it is already iterated"),
  );
});

Deno.test("SseClient rejects bad input, naming the field and the value", () => {
  const create =
    (init: Record<string, unknown>, input: unknown = "http://x/") => () =>
      new SseClient(input as string, init);
  const cases: [() => unknown, Error][] = [
    [
      create({}, 42),
      new TypeError("Cannot create SseClient: `input` must be a URL, got 42"),
    ],
    [
      create({}, "http://[::"),
      new TypeError(
        'Cannot create SseClient: `input` must be a URL, got "http://[::"',
      ),
    ],
    [
      create({ retry: -1 }),
      new RangeError(
        "Cannot create SseClient: `retry` must be milliseconds from 0 to 2147483647, got -1",
      ),
    ],
    [
      create({ idleTimeout: 1.5 }),
      new RangeError(
        "Cannot create SseClient: `idleTimeout` must be milliseconds from 0 to 2147483647, got 1.5",
      ),
    ],
    [
      create({ retryMax: 0 }),
      new RangeError(
        "Cannot create SseClient: `retryMax` must be milliseconds from 1 to 2147483647, got 0",
      ),
    ],
    [
      create({ retryMax: "1s" }),
      new RangeError(
        'Cannot create SseClient: `retryMax` must be milliseconds from 1 to 2147483647, got "1s"',
      ),
    ],
    [
      create({ reconnect: "sometimes" }),
      new TypeError(
        'Cannot create SseClient: `reconnect` must be "always", "dropped" or "never", got "sometimes"',
      ),
    ],
    [
      create({ lastEventId: "a\nb" }),
      new TypeError(
        'Cannot create SseClient: `lastEventId` contains a line break or NUL: "a\\nb"',
      ),
    ],
    [
      create({ lastEventId: 7 }),
      new TypeError(
        "Cannot create SseClient: `lastEventId` must be a string, got 7",
      ),
    ],
    [
      create({ maxEventSize: 0 }),
      new RangeError(
        "Cannot create SseClient: `maxEventSize` must be a positive integer, got 0",
      ),
    ],
    [
      create({ onMessage: "log" }),
      new TypeError(
        'Cannot create SseClient: `onMessage` must be a function, got "log"',
      ),
    ],
    [
      create({ signal: {} }),
      new TypeError(
        "Cannot create SseClient: `signal` must be an AbortSignal, got an object",
      ),
    ],
    [
      create({ body: new ReadableStream() }),
      new TypeError(
        "Cannot create SseClient: `body` must be one that can be sent again on each reconnect (a string, Blob, ArrayBuffer, typed array, FormData or URLSearchParams), got a ReadableStream",
      ),
    ],
    [
      create({ body: { prompt: "hi" } }),
      new TypeError(
        "Cannot create SseClient: `body` must be one that can be sent again on each reconnect (a string, Blob, ArrayBuffer, typed array, FormData or URLSearchParams), got an object",
      ),
    ],
  ];
  for (const [fn, error] of cases) assert.throws(fn, error);
  assert.throws(create({ headers: { "bad name": "x" } }), (error: Error) => {
    assert.ok(error instanceof TypeError);
    assert.match(error.message, /^Cannot create SseClient: `headers`: /);
    return true;
  });
});
