// The demo app (demo.ts) over real HTTP on 127.0.0.1, read by real clients.
import assert from "node:assert/strict";
import {
  createDemo,
  DEFAULT_COUNT,
  DEFAULT_INTERVAL_MS,
  MAX_COUNT,
  MAX_INTERVAL_MS,
  MAX_MESSAGE_LENGTH,
  parseFlags,
} from "../demo.ts";
import { cutFirstStream, ISO_TIME, maskTimes, withDemo } from "./demo_util.ts";
import { delay } from "./util.ts";
import { StreamReader } from "./stream_reader.ts";

const LOG_LINE =
  /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (ERROR|WARN |INFO |DEBUG) \S/;

/** The JSON data of every event in `text`, in order. */
function dataOf(text: string): Record<string, unknown>[] {
  return [...text.matchAll(/^data: (.*)$/gm)].map(([, json]) =>
    JSON.parse(json)
  );
}

Deno.test("The demo streams connected, the ticks and complete for count=3&intervalMs=10", async () => {
  await withDemo(async ({ url, logs, logged }) => {
    const started = performance.now();
    const response = await fetch(new URL("/sse?count=3&intervalMs=10", url));
    assert.equal(response.status, 200);
    assert.equal(
      response.headers.get("content-type"),
      "text/event-stream; charset=utf-8",
    );
    const text = await response.text();
    const elapsed = performance.now() - started;

    assert.equal(
      maskTimes(text),
      "event: connected\n" +
        "retry: 2000\n" +
        'data: {"message":"Streaming 3 ticks, one every 10 ms","serverTime":"T","count":3,"intervalMs":10}\n' +
        "\n" +
        "event: tick\n" +
        "id: 1\n" +
        'data: {"i":1,"total":3,"timestamp":"T"}\n' +
        "\n" +
        "event: tick\n" +
        "id: 2\n" +
        'data: {"i":2,"total":3,"timestamp":"T"}\n' +
        "\n" +
        "event: tick\n" +
        "id: 3\n" +
        'data: {"i":3,"total":3,"timestamp":"T"}\n' +
        "\n" +
        "event: complete\n" +
        'data: {"message":"Sent all 3 ticks","total":3,"serverTime":"T"}\n' +
        "\n",
    );
    const times = dataOf(text).map((data) =>
      String(data.serverTime ?? data.timestamp)
    );
    for (const time of times) assert.match(time, ISO_TIME);
    assert.deepEqual(times, times.toSorted(), "times never go back");
    assert.ok(elapsed >= 3 * 10, `three 10 ms intervals took ${elapsed} ms`);

    await logged(/sse closed #1/);
    assert.equal(logs.length, 2);
    for (const line of logs) assert.match(line, LOG_LINE);
    assert.match(
      logs[0],
      /Z INFO {2}sse opened #1 count=3 intervalMs=10 from 127\.0\.0\.1$/,
    );
    assert.match(logs[1], /Z INFO {2}sse closed #1 complete, sent 3 ticks$/);
  });
});

Deno.test("The demo uses count 30 and intervalMs 1000 when they are absent, empty or ≤ 0", async (t) => {
  assert.equal(DEFAULT_COUNT, 30);
  assert.equal(DEFAULT_INTERVAL_MS, 1000);
  for (
    const query of [
      "",
      "?count=0&intervalMs=0",
      "?count=-5&intervalMs=-1",
      "?count=&intervalMs=",
    ]
  ) {
    await t.step(`/sse${query}`, async () => {
      await withDemo(async ({ url, logged }) => {
        const response = await fetch(new URL(`/sse${query}`, url));
        const body = new StreamReader(response.body!);
        const text = await body.until("\n\n");
        await body.cancel();
        assert.deepEqual(
          { ...dataOf(text)[0], serverTime: "T" },
          {
            message: "Streaming 30 ticks, one every 1000 ms",
            serverTime: "T",
            count: 30,
            intervalMs: 1000,
          },
        );
        await logged(/sse closed #1 client left, sent 0 ticks$/);
      });
    });
  }
});

Deno.test("The demo answers a bad count or intervalMs with 400 naming the parameter", async (t) => {
  assert.equal(MAX_COUNT, 10_000);
  assert.equal(MAX_INTERVAL_MS, 5000);
  const count = "`count` must be an integer from 1 to 10000";
  const intervalMs = "`intervalMs` must be an integer from 1 to 5000";
  await withDemo(async ({ demo, url, logs }) => {
    for (
      const [query, message] of [
        ["count=abc", `${count}, got "abc"`],
        ["count=1.5", `${count}, got "1.5"`],
        ["count=1e3", `${count}, got "1e3"`],
        ["count=0x10", `${count}, got "0x10"`],
        ["count=%20", `${count}, got " "`],
        ["count=10001", `${count}, got "10001"`],
        [
          "count=99999999999999999999999",
          `${count}, got "99999999999999999999999"`,
        ],
        ["count=3&intervalMs=5001", `${intervalMs}, got "5001"`],
        ["intervalMs=fast", `${intervalMs}, got "fast"`],
        [
          `count=${"9".repeat(50)}`,
          `${count}, got "${"9".repeat(37)}..."`,
        ],
      ]
    ) {
      await t.step(query, async () => {
        const response = await fetch(new URL(`/sse?${query}`, url));
        assert.equal(response.status, 400);
        assert.equal(
          response.headers.get("content-type"),
          "text/plain; charset=utf-8",
        );
        assert.equal(await response.text(), `Bad request: ${message}\n`);
        assert.match(logs.at(-1)!, / WARN {2}sse rejected from 127\.0\.0\.1: /);
      });
    }
    assert.equal(demo.stats.opened, 0, "no stream was opened");

    await t.step("count=10000&intervalMs=5000 is accepted", async () => {
      const response = await fetch(
        new URL("/sse?count=10000&intervalMs=5000", url),
      );
      assert.equal(response.status, 200);
      await response.body!.cancel();
    });
  });
});

Deno.test("The demo answers a query parameter given twice with 400", async (t) => {
  await withDemo(async ({ demo, url }) => {
    for (
      const [target, message] of [
        [
          "/sse?count=3&count=4",
          '`count` must be given once, got 2 values: "3", "4"',
        ],
        [
          "/sse?intervalMs=10&intervalMs=10",
          '`intervalMs` must be given once, got 2 values: "10", "10"',
        ],
        [
          "/sse?lastEventId=1&lastEventId=2&lastEventId=3&lastEventId=4",
          '`lastEventId` must be given once, got 4 values: "1", "2", "3", ...',
        ],
        [
          "/broadcast/events?lastEventId=a&lastEventId=b",
          '`lastEventId` must be given once, got 2 values: "a", "b"',
        ],
      ]
    ) {
      await t.step(target, async () => {
        const response = await fetch(new URL(target, url));
        assert.equal(response.status, 400);
        assert.equal(await response.text(), `Bad request: ${message}\n`);
      });
    }
    assert.equal(demo.stats.opened, 0);
    assert.equal(demo.stats.broadcastClients, 0);
  });
});

Deno.test("The demo answers HEAD wherever it answers GET: the same headers, no body, no stream", async (t) => {
  await withDemo(async ({ demo, url }) => {
    const paths = [
      "/",
      "/ticks.js",
      "/style.css",
      "/favicon.svg",
      "/broadcast",
      "/broadcast.js",
      "/metrics",
      "/sse?count=3",
      "/broadcast/events",
      "/sse?count=x",
      "/nope",
    ];
    const heads = new Map<string, Response>();
    for (const path of paths) {
      const response = await fetch(new URL(path, url), { method: "HEAD" });
      assert.equal(await response.text(), "", path);
      heads.set(path, response);
    }
    assert.equal(demo.stats.opened, 0, "HEAD /sse opens no stream");
    assert.equal(demo.stats.broadcastClients, 0, "nor joins the room");
    for (const path of paths) {
      await t.step(path, async () => {
        const get = await fetch(new URL(path, url));
        await get.body?.cancel();
        const head = heads.get(path)!;
        assert.equal(head.status, get.status);
        // Less the date, and the framing of a body that HEAD does not have.
        const without = (headers: Headers) =>
          [...headers].filter(([name]) =>
            name !== "date" && name !== "transfer-encoding"
          );
        // /metrics counts the GET of /metrics itself: not its length.
        const type = get.headers.get("content-type")!;
        if (type.startsWith("text/plain; version")) {
          assert.equal(head.headers.get("content-type"), type);
        } else assert.deepEqual(without(head.headers), without(get.headers));
      });
    }
    const response = await fetch(new URL("/broadcast/messages", url), {
      method: "HEAD",
    });
    assert.equal(response.status, 405, "no GET, no HEAD");
    assert.equal(response.headers.get("allow"), "POST");
  });
});

Deno.test("The demo answers other methods with 405 and unknown paths with 404", async (t) => {
  await withDemo(async ({ url }) => {
    for (
      const [method, path] of [["POST", "/sse"], ["PUT", "/sse"], [
        "DELETE",
        "/",
      ], ["POST", "/ticks.js"]]
    ) {
      await t.step(`${method} ${path}`, async () => {
        const response = await fetch(new URL(path, url), { method });
        assert.equal(response.status, 405);
        assert.equal(response.headers.get("allow"), "GET, HEAD");
        assert.equal(
          await response.text(),
          "Method not allowed: use GET, HEAD\n",
        );
      });
    }
    for (
      const path of [
        "/nope",
        "/index.html",
        "/static/index.html",
        "/static/ticks.js",
        "/sse/",
        "/demo.ts",
        "/deno.json",
      ]
    ) {
      await t.step(`GET ${path}`, async () => {
        const response = await fetch(new URL(path, url));
        assert.equal(response.status, 404);
        assert.equal(await response.text(), "Not found\n");
      });
    }
  });
});

/** Sends `target` as written, without the normalising that fetch does. */
async function rawGet(
  url: URL,
  target: string,
): Promise<{ status: number; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: +url.port });
  await conn.write(
    new TextEncoder().encode(
      `GET ${target} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`,
    ),
  );
  const text = await new Response(conn.readable).text();
  return { status: Number(text.split(" ")[1]), text };
}

Deno.test("The demo serves no file outside its fixed routes", async (t) => {
  await withDemo(async ({ url }) => {
    for (
      const target of [
        "/../deno.json",
        "/%2e%2e/deno.json",
        "/..%2fdeno.json",
        "/%2e%2e%2fdemo.ts",
        "/static/../deno.json",
        "/static/%2e%2e/demo.ts",
        "/ticks.js/../../deno.json",
        "/..%5cdeno.json",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/static/ticks.js%00",
      ]
    ) {
      await t.step(target, async () => {
        const { status, text } = await rawGet(url, target);
        assert.equal(status, 404, text);
        assert.doesNotMatch(text, /ssekit|import|root:/);
      });
    }
  });
});

Deno.test("The demo serves the page and its assets from static/", async (t) => {
  await withDemo(async ({ url }) => {
    for (
      const [path, file, type] of [
        ["/", "index.html", "text/html; charset=utf-8"],
        ["/ticks.js", "ticks.js", "text/javascript; charset=utf-8"],
        ["/style.css", "style.css", "text/css; charset=utf-8"],
        ["/favicon.svg", "favicon.svg", "image/svg+xml"],
      ]
    ) {
      await t.step(path, async () => {
        const response = await fetch(new URL(path, url));
        assert.equal(response.status, 200);
        assert.equal(response.headers.get("content-type"), type);
        assert.equal(
          response.headers.get("content-security-policy"),
          "default-src 'self'",
        );
        assert.equal(
          await response.text(),
          await Deno.readTextFile(
            new URL(`../static/${file}`, import.meta.url),
          ),
        );
      });
    }
  });
});

Deno.test("The demo resumes after the tick in Last-Event-ID", async (t) => {
  const cases: {
    name: string;
    query?: string;
    lastEventId?: string;
    ticks: number[];
    message: string;
  }[] = [
    {
      name: "Last-Event-ID: 2",
      lastEventId: "2",
      ticks: [3, 4],
      message: "Resuming after tick 2 of 4",
    },
    {
      name: "?lastEventId=3",
      query: "&lastEventId=3",
      ticks: [4],
      message: "Resuming after tick 3 of 4",
    },
    {
      name: "Last-Event-ID: 4 (all sent)",
      lastEventId: "4",
      ticks: [],
      message: "Resuming after tick 4 of 4",
    },
    {
      name: "Last-Event-ID: 99",
      lastEventId: "99",
      ticks: [],
      message: "Resuming after tick 4 of 4",
    },
    {
      name: "Last-Event-ID: abc (starts over)",
      lastEventId: "abc",
      ticks: [1, 2, 3, 4],
      message: "Streaming 4 ticks, one every 10 ms",
    },
  ];
  for (const { name, query = "", lastEventId, ticks, message } of cases) {
    await t.step(name, async () => {
      await withDemo(async ({ url, logged }) => {
        const response = await fetch(
          new URL(`/sse?count=4&intervalMs=10${query}`, url),
          {
            headers: lastEventId === undefined
              ? {}
              : { "last-event-id": lastEventId },
          },
        );
        const text = await response.text();
        const ids = [...text.matchAll(/^id: (\d+)$/gm)].map(([, id]) => +id);
        assert.deepEqual(ids, ticks);
        const events = [...text.matchAll(/^event: (\w+)$/gm)].map(([, e]) => e);
        assert.deepEqual(events, [
          "connected",
          ...ticks.map(() => "tick"),
          "complete",
        ]);
        assert.equal(dataOf(text)[0].message, message);
        await logged(
          new RegExp(`sse closed #1 complete, sent ${ticks.length} ticks?$`),
        );
      });
    });
  }
});

Deno.test("Deno's EventSource resumes a cut demo stream without gap or duplicate", async () => {
  await withDemo(async ({ demo, url, logs, logged }) => {
    const source = new EventSource(new URL("/sse?count=4&intervalMs=10", url));
    const seen: string[] = [];
    for (const name of ["connected", "tick"]) {
      source.addEventListener(name, (event) => {
        seen.push(`${name} ${(event as MessageEvent).lastEventId}`);
      });
    }
    const complete = new Promise<void>((resolve) =>
      source.addEventListener("complete", () => {
        source.close();
        resolve();
      })
    );
    await complete;
    assert.deepEqual(seen, [
      "connected ",
      "tick 1",
      "tick 2",
      "connected 2",
      "tick 3",
      "tick 4",
    ]);
    assert.equal(demo.stats.opened, 2);
    await logged(/sse closed #2 /);
    assert.deepEqual(logs.map((line) => line.slice(21)), [
      "INFO  sse opened #1 count=4 intervalMs=10 from 127.0.0.1",
      "INFO  sse closed #1 client left, sent 2 ticks",
      "INFO  sse opened #2 count=4 intervalMs=10 from 127.0.0.1 resuming after 2",
      "INFO  sse closed #2 complete, sent 2 ticks",
    ]);
  }, { wrap: cutFirstStream(2) });
});

Deno.test("The demo stops the producer as soon as the client disconnects", async () => {
  await withDemo(async ({ demo, url, logged }) => {
    const controller = new AbortController();
    const response = await fetch(
      new URL("/sse?count=10000&intervalMs=20", url),
      { signal: controller.signal },
    );
    const body = new StreamReader(response.body!);
    await body.until("id: 3\n");
    assert.equal(demo.stats.open, 1);
    controller.abort();
    await body.rest().catch(() => {});

    const line = await logged(/sse closed #1 /);
    const sent = Number(line.match(/client left, sent (\d+) ticks$/)?.[1]);
    assert.ok(sent >= 3, line);
    assert.equal(demo.stats.open, 0);
    assert.equal(demo.stats.ticksSent, sent);
    await delay(100); // five intervals: the producer would have ticked
    assert.equal(demo.stats.ticksSent, sent, "no tick after the disconnect");
    // The ops sanitizer fails this test if a timer of the stream is left.
  });
});

Deno.test("The demo ends at once a stream whose client left before it answered", async () => {
  const logs: string[] = [];
  const demo = createDemo({ log: (line) => logs.push(line) });
  const response = await demo.handler(
    new Request("http://localhost/sse?count=3&intervalMs=10", {
      signal: AbortSignal.abort(),
    }),
  );
  // At most what the handler queued before the writer closed: no tick.
  assert.doesNotMatch(await response.text(), /event: tick/);
  assert.equal(demo.stats.open, 0);
  assert.equal(demo.stats.ticksSent, 0);
  assert.match(logs.at(-1)!, /sse closed #1 client left, sent 0 ticks$/);
});

Deno.test("The demo's shutdown ends every open stream cleanly", async () => {
  await withDemo(async ({ demo, url, logs, logged }) => {
    const bodies = await Promise.all([1, 2].map(async () => {
      const response = await fetch(
        new URL("/sse?count=100&intervalMs=10", url),
      );
      const body = new StreamReader(response.body!);
      await body.until("id: 1\n");
      return body;
    }));
    assert.equal(demo.stats.open, 2);
    demo.shutdown();
    for (const body of bodies) {
      assert.doesNotMatch(await body.rest(), /event: complete/);
    }
    assert.equal(demo.stats.open, 0);
    await logged(/INFO {2}ending 2 open streams$/);
    assert.equal(
      logs.filter((line) => / sse closed #\d server shutdown, sent/.test(line))
        .length,
      2,
    );
    const refused = await fetch(new URL("/sse", url));
    assert.equal(refused.status, 503);
    assert.equal(
      await refused.text(),
      "Service unavailable: the server is shutting down\n",
    );
  });
});

Deno.test("The demo logs at the chosen level", async (t) => {
  await t.step("warn: errors and warnings only", async () => {
    await withDemo(async ({ url, logs }) => {
      await (await fetch(new URL("/sse?count=1&intervalMs=1", url))).text();
      await (await fetch(new URL("/sse?count=x", url))).text();
      assert.equal(logs.length, 1);
      assert.match(logs[0], / WARN {2}sse rejected from 127\.0\.0\.1: `count`/);
    }, { logLevel: "warn" });
  });
  await t.step("debug: every request and every tick", async () => {
    await withDemo(async ({ url, logs, logged }) => {
      await (await fetch(new URL("/sse?count=2&intervalMs=1", url))).text();
      await (await fetch(new URL("/nope", url))).text();
      await logged(/GET \/nope 404/);
      assert.deepEqual(logs.map((line) => line.slice(21)), [
        "INFO  sse opened #1 count=2 intervalMs=1 from 127.0.0.1",
        "DEBUG GET /sse 200 127.0.0.1",
        "DEBUG sse #1 tick 1/2",
        "DEBUG sse #1 tick 2/2",
        "INFO  sse closed #1 complete, sent 2 ticks",
        "DEBUG GET /nope 404 127.0.0.1",
      ]);
    }, { logLevel: "debug" });
  });
});

const DEMO = new URL("../demo.ts", import.meta.url).pathname;

/** Runs `deno run -A demo.ts ...args` to completion (for flag errors). */
async function runDemo(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", DEMO, ...args],
    env,
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return {
    code,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr),
  };
}

Deno.test("`deno run -A demo.ts` prints its URLs, streams, and exits cleanly on SIGINT", async () => {
  // From another working directory, with a PORT that the flag overrides.
  const cwd = await Deno.makeTempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", DEMO, "--port", "0"],
    cwd,
    env: { PORT: "not-a-port", HOST: "127.0.0.1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const stdout = new StreamReader(child.stdout);
  try {
    const banner = await stdout.until("Press Ctrl-C to stop.\n");
    const origin = banner.match(/page: +(http:\/\/127\.0\.0\.1:\d+)\/\n/)?.[1];
    assert.ok(origin, banner);
    assert.equal(
      banner,
      `ssekit demo\n  page:      ${origin}/\n` +
        `  stream:    curl -N "${origin}/sse?count=3&intervalMs=100"\n` +
        `  broadcast: ${origin}/broadcast\n` +
        `  metrics:   ${origin}/metrics\n` +
        "  protocols: HTTP/1.1 (a browser opens 6 streams per origin; --cert and --key for HTTP/2)\n" +
        "Press Ctrl-C to stop.\n",
    );

    const page = await fetch(`${origin}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>ssekit demo/);

    const text = await (await fetch(`${origin}/sse?count=3&intervalMs=100`))
      .text();
    assert.equal(
      maskTimes(text),
      "event: connected\n" +
        "retry: 2000\n" +
        'data: {"message":"Streaming 3 ticks, one every 100 ms","serverTime":"T","count":3,"intervalMs":100}\n\n' +
        [1, 2, 3].map((i) =>
          `event: tick\nid: ${i}\ndata: {"i":${i},"total":3,"timestamp":"T"}\n\n`
        ).join("") +
        "event: complete\n" +
        'data: {"message":"Sent all 3 ticks","total":3,"serverTime":"T"}\n\n',
    );

    // Ctrl-C while a stream is open: the stream ends, then the process.
    const open = new StreamReader(
      (await fetch(`${origin}/sse?count=100&intervalMs=20`)).body!,
    );
    await open.until("id: 1\n");
    child.kill("SIGINT");
    assert.doesNotMatch(await open.rest(), /event: complete/);
    const { code } = await child.status;
    assert.equal(code, 0);
    await stdout.rest();
    const log = await stderr;
    assert.match(log, / INFO {2}shutting down/);
    assert.match(
      log,
      / INFO {2}sse closed #2 server shutdown, sent \d+ ticks?\n/,
    );
    assert.doesNotMatch(log, /ERROR|Deno\.serve:/, "no error, no warning");
  } finally {
    try {
      child.kill();
    } catch {
      // Already exited.
    }
    await child.status;
    await stdout.cancel().catch(() => {});
    await stderr.catch(() => {});
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("`deno run -A demo.ts` reads PORT and rejects bad flags", async (t) => {
  await t.step("--help", async () => {
    const { code, stdout } = await runDemo(["--help"]);
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: deno run -A demo\.ts \[options\]/);
    assert.match(stdout, /--log-level <lvl> {2}error, warn, info, debug/);
  });
  for (
    const [args, env, message] of [
      [["--port", "abc"], {}, 'Invalid port: "abc"'],
      [["--port", "70000"], {}, 'Invalid port: "70000"'],
      [[], { PORT: "abc" }, 'Invalid port: "abc"'],
      [["--log-level", "loud"], {}, 'Invalid log level: "loud"'],
      [
        ["--keep-alive", "5s"],
        {},
        'Invalid --keep-alive: "5s" (milliseconds from 0, off, to 2147483647)',
      ],
      [["--keep-alive=-1"], {}, 'Invalid --keep-alive: "-1"'],
      [
        ["--keep-alive", "2147483648"],
        {},
        'Invalid --keep-alive: "2147483648"',
      ],
      [
        ["--cert", "cert.pem"],
        {},
        "--cert and --key go together: got --cert alone",
      ],
      [
        ["--cert", "/nonexistent/cert.pem", "--key", "/nonexistent/key.pem"],
        {},
        'Cannot read --cert "/nonexistent/cert.pem": ',
      ],
      [["--nope"], {}, "Unknown option '--nope'"],
    ] as [string[], Record<string, string>, string][]
  ) {
    const name = [...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...args]
      .join(" ");
    await t.step(name, async () => {
      const { code, stderr } = await runDemo(args, env);
      assert.equal(code, 2);
      assert.ok(stderr.startsWith(message), stderr);
      assert.match(stderr, /Usage:/);
    });
  }
});

Deno.test("The demo's flags default to 127.0.0.1:5000 and override PORT and HOST", () => {
  const none = () => undefined;
  const defaults = { help: false, redis: undefined, keepAlive: undefined };
  assert.deepEqual(parseFlags([], none), {
    port: 5000,
    host: "127.0.0.1",
    logLevel: "info",
    ...defaults,
    tls: undefined,
  });
  const env = (name: string) =>
    ({ PORT: "8000", HOST: "0.0.0.0" } as Record<string, string>)[name];
  assert.deepEqual(parseFlags([], env), {
    port: 8000,
    host: "0.0.0.0",
    logLevel: "info",
    ...defaults,
    tls: undefined,
  });
  assert.deepEqual(
    parseFlags([
      ...["--port=0", "--host", "::1", "--log-level", "debug"],
      ...["--keep-alive", "0", "--cert", "c.pem", "--key", "k.pem"],
    ], env),
    {
      port: 0,
      host: "::1",
      logLevel: "debug",
      ...defaults,
      keepAlive: 0,
      tls: { cert: "c.pem", key: "k.pem" },
    },
  );
  assert.equal(parseFlags(["--keep-alive", "15000"], none).keepAlive, 15_000);
  assert.equal(parseFlags(["-h"], none).help, true);
  assert.throws(() => parseFlags(["--port", "-1"], none), TypeError);
  assert.throws(() => parseFlags(["extra"], none), TypeError);
  assert.equal(
    parseFlags(["--redis", "redis://127.0.0.1:6379"], none).redis,
    "redis://127.0.0.1:6379",
  );
  assert.throws(() => parseFlags(["--redis", "127.0.0.1:6379"], none), {
    name: "TypeError",
    message: 'Invalid Redis URL: "127.0.0.1:6379"',
  });
});

function postMessage(
  url: URL,
  body: BodyInit,
  type = "text/plain;charset=utf-8",
): Promise<Response> {
  return fetch(new URL("/broadcast/messages", url), {
    method: "POST",
    headers: { "content-type": type },
    body,
  });
}

Deno.test("The demo broadcasts a posted message to every client of /broadcast", async () => {
  await withDemo(async ({ demo, url, logged }) => {
    const readers = await Promise.all([1, 2].map(async () => {
      const response = await fetch(new URL("/broadcast/events", url));
      assert.equal(
        response.headers.get("content-type"),
        "text/event-stream; charset=utf-8",
      );
      return new StreamReader(response.body!);
    }));
    assert.equal(demo.stats.broadcastClients, 2);

    const posted = await postMessage(url, "  hello, every tab  ");
    assert.equal(posted.status, 201);
    const { id } = await posted.json();
    for (const reader of readers) {
      const isMessage = (block: string) => block.includes("event: message");
      await reader.waitFor(() => reader.blocks().some(isMessage));
      const message = reader.blocks().find(isMessage)!;
      const [, data] = message.match(/^data: (.*)$/m)!;
      assert.match(message, new RegExp(`^id: ${id}$`, "m"));
      assert.equal(JSON.parse(data).text, "hello, every tab");
      assert.match(JSON.parse(data).at, ISO_TIME);
    }
    await logged(
      new RegExp(`broadcast message ${id} from 127\\.0\\.0\\.1 to 2`),
    );

    // The count of clients goes to everyone when one leaves.
    await readers[0].cancel();
    const [, other] = readers;
    await other.waitFor(() =>
      other.blocks().some((block) => block.includes('"count":1'))
    );
    assert.match(
      other.blocks().at(-1)!,
      /^event: clients\ndata: {"count":1}$/m,
    );
    assert.equal(demo.stats.broadcastClients, 1);
    await readers[1].cancel();
  });
});

Deno.test("The demo refuses a broadcast message that is not short text", async (t) => {
  await withDemo(async ({ url }) => {
    const cases: [string, () => Promise<Response>, string][] = [
      ["empty", () => postMessage(url, "   "), "the message is empty"],
      [
        "too long",
        () => postMessage(url, "x".repeat(MAX_MESSAGE_LENGTH + 1)),
        `a message is at most ${MAX_MESSAGE_LENGTH} characters`,
      ],
      [
        "far too long",
        () => postMessage(url, "x".repeat(1_000_000)),
        `a message is at most ${MAX_MESSAGE_LENGTH} characters`,
      ],
      [
        "not text",
        () =>
          postMessage(url, JSON.stringify({ text: "hi" }), "application/json"),
        "a message must be sent as text/plain",
      ],
      [
        "not UTF-8",
        () => postMessage(url, new Uint8Array([0x68, 0xff, 0x69])),
        "a message must be UTF-8 text",
      ],
    ];
    for (const [name, send, message] of cases) {
      await t.step(name, async () => {
        const response = await send();
        assert.equal(response.status, 400);
        assert.equal(await response.text(), `Bad request: ${message}\n`);
      });
    }
    await t.step("GET is not allowed", async () => {
      const response = await fetch(new URL("/broadcast/messages", url));
      assert.equal(response.status, 405);
      assert.equal(response.headers.get("allow"), "POST");
      await response.body?.cancel();
    });
  });
});
