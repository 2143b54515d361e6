import assert from "node:assert/strict";
import {
  encodeComment,
  encodeEvent,
  type SseEvent,
  SseWriter,
} from "../mod.ts";

Deno.test("encodeEvent writes every field as `field: value`", async (t) => {
  const cases: [SseEvent, string][] = [
    [{ data: "hello" }, "data: hello\n\n"],
    [{ data: " leading space" }, "data:  leading space\n\n"],
    [{ event: " x", data: "y" }, "event:  x\ndata: y\n\n"],
    [
      { event: "tick", id: 7, retry: 2000, data: { i: 7 } },
      'event: tick\nid: 7\nretry: 2000\ndata: {"i":7}\n\n',
    ],
    [{ id: "abc" }, "id: abc\n\n"],
    [{ id: "" }, "id: \n\n"],
    [{ id: -1.5 }, "id: -1.5\n\n"],
    [{ retry: 0 }, "retry: 0\n\n"],
    [{ event: "", data: "x" }, "event: \ndata: x\n\n"],
    [{ data: "" }, "data: \n\n"],
    [{ data: null }, "data: null\n\n"],
    [{ data: 0 }, "data: 0\n\n"],
    [{ data: false }, "data: false\n\n"],
    [{ data: ["a\nb"] }, 'data: ["a\\nb"]\n\n'],
    [{ data: "ü € 😀" }, "data: ü € 😀\n\n"],
    [{ data: "a:b" }, "data: a:b\n\n"],
  ];
  for (const [event, wire] of cases) {
    await t.step(JSON.stringify(event), () => {
      assert.equal(encodeEvent(event), wire);
    });
  }
});

Deno.test("encodeEvent splits data on LF, CRLF and CR", async (t) => {
  const cases: [string, string][] = [
    ["a\nb", "data: a\ndata: b\n\n"],
    ["a\r\nb", "data: a\ndata: b\n\n"],
    ["a\rb", "data: a\ndata: b\n\n"],
    ["a\n\nb", "data: a\ndata: \ndata: b\n\n"],
    ["a\r\rb", "data: a\ndata: \ndata: b\n\n"],
    ["a\n\r\nb", "data: a\ndata: \ndata: b\n\n"],
    ["\n", "data: \ndata: \n\n"],
    ["a\n", "data: a\ndata: \n\n"],
    ["\r\n", "data: \ndata: \n\n"],
  ];
  for (const [data, wire] of cases) {
    await t.step(JSON.stringify(data), () => {
      assert.equal(encodeEvent({ data }), wire);
    });
  }
});

Deno.test("encodeComment prefixes every line with a colon", () => {
  assert.equal(encodeComment(), ":\n");
  assert.equal(encodeComment(""), ":\n");
  assert.equal(encodeComment("ping"), ": ping\n");
  assert.equal(encodeComment("a\r\nb\rc\nd"), ": a\n: b\n: c\n: d\n");
  assert.equal(encodeComment("a\n"), ": a\n: \n");
});

Deno.test("encodeEvent rejects bad fields with an error naming field and value", async (t) => {
  const cases: [unknown, ErrorConstructor, string][] = [
    [
      { event: "a\nb", data: "x" },
      TypeError,
      'Cannot encode event: `event` contains a line break: "a\\nb"',
    ],
    [
      { event: "a\rb", data: "x" },
      TypeError,
      'Cannot encode event: `event` contains a line break: "a\\rb"',
    ],
    [
      { event: "tick\ndata: injected", data: "x" },
      TypeError,
      'Cannot encode event: `event` contains a line break: "tick\\ndata: injected"',
    ],
    [
      { event: 5, data: "x" },
      TypeError,
      "Cannot encode event: `event` must be a string, got 5",
    ],
    [
      { event: "ping" },
      TypeError,
      'Cannot encode event: `event` "ping" has no `data`, so clients would never dispatch it',
    ],
    [
      { id: "1\n2" },
      TypeError,
      'Cannot encode event: `id` contains a line break or NUL: "1\\n2"',
    ],
    [
      { id: "1\r" },
      TypeError,
      'Cannot encode event: `id` contains a line break or NUL: "1\\r"',
    ],
    [
      { id: "a\0b" },
      TypeError,
      'Cannot encode event: `id` contains a line break or NUL: "a\\u0000b"',
    ],
    [
      { id: "a\ud800" },
      TypeError,
      'Cannot encode event: `id` contains a lone surrogate, which UTF-8 cannot carry: "a\\ud800"',
    ],
    [
      { id: "\udc00z" },
      TypeError,
      'Cannot encode event: `id` contains a lone surrogate, which UTF-8 cannot carry: "\\udc00z"',
    ],
    [
      { event: "tick\udbff", data: "x" },
      TypeError,
      'Cannot encode event: `event` contains a lone surrogate, which UTF-8 cannot carry: "tick\\udbff"',
    ],
    [
      { id: NaN },
      RangeError,
      "Cannot encode event: `id` must be a finite number, got NaN",
    ],
    [
      { id: Infinity },
      RangeError,
      "Cannot encode event: `id` must be a finite number, got Infinity",
    ],
    [
      { id: true },
      TypeError,
      "Cannot encode event: `id` must be a string or a number, got true",
    ],
    [
      { retry: -5 },
      RangeError,
      "Cannot encode event: `retry` must be a non-negative integer of milliseconds, got -5",
    ],
    [
      { retry: NaN },
      RangeError,
      "Cannot encode event: `retry` must be a non-negative integer of milliseconds, got NaN",
    ],
    [
      { retry: 1.5 },
      RangeError,
      "Cannot encode event: `retry` must be a non-negative integer of milliseconds, got 1.5",
    ],
    [
      { retry: 2 ** 53 },
      RangeError,
      "Cannot encode event: `retry` must be a non-negative integer of milliseconds, got 9007199254740992",
    ],
    [
      { retry: "2000" },
      TypeError,
      'Cannot encode event: `retry` must be a number, got "2000"',
    ],
    [
      { data: 10n },
      TypeError,
      "Cannot encode event: `data` is not JSON-serializable: Do not know how to serialize a BigInt",
    ],
    [
      { data: () => 1 },
      TypeError,
      "Cannot encode event: `data` is not JSON-serializable: a function",
    ],
    [
      { data: Symbol("s") },
      TypeError,
      "Cannot encode event: `data` is not JSON-serializable: Symbol(s)",
    ],
    [
      {},
      TypeError,
      "Cannot encode event: it has none of `event`, `data`, `id` and `retry`",
    ],
    [null, TypeError, "Cannot encode event: expected an object, got null"],
    ["hi", TypeError, 'Cannot encode event: expected an object, got "hi"'],
  ];
  for (const [event, type, message] of cases) {
    await t.step(message, () => {
      assert.throws(() => encodeEvent(event as SseEvent), (error: Error) => {
        assert.equal(error.constructor, type);
        assert.equal(error.message, message);
        return true;
      });
    });
  }
  await t.step("a cycle in data", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(
      () => encodeEvent({ data: cyclic }),
      (error: Error) =>
        error instanceof TypeError &&
        error.message.startsWith(
          "Cannot encode event: `data` is not JSON-serializable: ",
        ),
    );
  });
  await t.step("long values are shortened in the message", () => {
    assert.throws(
      () => encodeEvent({ id: "x".repeat(100) + "\n" }),
      {
        message: `Cannot encode event: \`id\` contains a line break or NUL: "${
          "x".repeat(55)
        }..."`,
      },
    );
  });
  await t.step("a name that passed once does not let a bad one through", () => {
    // encodeEvent remembers the last name it checked; each bad name below
    // comes right after a good one, and each good one after a bad one.
    for (const bad of ["tick\n", "tick\r", "tick\ud800", 7, "", "tick\n"]) {
      assert.equal(
        encodeEvent({ event: "tick", data: 1 }),
        "event: tick\ndata: 1\n\n",
      );
      if (bad === "") {
        // An empty name is allowed: it is the default type.
        assert.equal(
          encodeEvent({ event: "", data: 1 }),
          "event: \ndata: 1\n\n",
        );
        continue;
      }
      assert.throws(
        () => encodeEvent({ event: bad as string, data: 1 }),
        { name: "TypeError", message: /^Cannot encode event: `event` / },
      );
    }
  });
  await t.step("comments must be strings", () => {
    assert.throws(() => encodeComment(1 as unknown as string), {
      name: "TypeError",
      message: "Cannot encode comment: `text` must be a string, got 1",
    });
  });
});

Deno.test("A lone surrogate in data reaches the wire as U+FFFD; in JSON data, escaped", async () => {
  const writer = new SseWriter({ keepAlive: 0 });
  writer.write({ id: "😀", data: "a\ud800b" });
  writer.write({ data: { text: "a\ud800b" } });
  writer.close();
  assert.equal(
    await writer.response.text(),
    'id: 😀\ndata: a\ufffdb\n\ndata: {"text":"a\\ud800b"}\n\n',
  );
});
