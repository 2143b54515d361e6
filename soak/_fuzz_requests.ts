// Hostile HTTP requests for soak/hostile_input.ts, as raw bytes, drawn from
// a seeded PRNG: malformed request lines, odd methods and paths, huge and
// invalid headers, odd queries and Last-Event-IDs, broken POST bodies and
// framing, early closes, pipelining and plain garbage.

import type { Rng } from "./_fuzz_rng.ts";

/** One request to send, and what to expect of its timing. */
export interface HostileRequest {
  /** Which generator made it, for the counts by kind. */
  kind: string;
  /** A one-line description, for violation messages. */
  label: string;
  pieces: { bytes: Uint8Array; delayMs?: number }[];
  /** Close once sent, without reading. */
  earlyClose?: boolean;
  /** Half-close the socket once sent. */
  closeWrite?: boolean;
  /** HEAD: no body in the response. */
  head?: boolean;
  /**
   * The route the request names, when its target is one of the demo's paths
   * in origin form: a 2xx answer must then come from that route.
   */
  route?: string;
  /**
   * The server cannot answer until more bytes come (an incomplete head or
   * body): wait only a little for it.
   */
  incomplete?: boolean;
}

/** Weights of the generators: how often each kind is drawn. */
const KINDS = {
  "sse-query": 14,
  "last-event-id": 10,
  "broadcast-events": 8,
  "post-message": 16,
  "method": 8,
  "path": 10,
  "request-line": 8,
  "headers": 10,
  "early-close": 6,
  "pipelined": 3,
  "half-close": 2,
  "binary": 3,
};

const UTF8 = new TextEncoder();

/** Bytes of a string whose characters are bytes (0-255): raw wire text. */
export function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
}

/** A string of bytes (for `latin1`) holding `text` as UTF-8. */
function utf8Bytes(text: string): string {
  return String.fromCharCode(...UTF8.encode(text));
}

function join(...parts: (string | Uint8Array)[]): Uint8Array {
  const arrays = parts.map((p) => typeof p === "string" ? latin1(p) : p);
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return out;
}

const ROUTES = [
  "/",
  "/ticks.js",
  "/style.css",
  "/favicon.svg",
  "/broadcast",
  "/broadcast.js",
  "/sse?count=2&intervalMs=5",
  "/broadcast/events",
  "/broadcast/messages",
];

const PATHS = [
  ...ROUTES,
  "/sse",
  "/../",
  "/../../../../etc/passwd",
  "/static/../demo.ts",
  "/%2e%2e/demo.ts",
  "/%2e%2e%2fdemo.ts",
  "/..%2fdemo.ts",
  "/static/ticks.js",
  "/ticks.js%00",
  "/%00",
  "/sse%00",
  "/sse%00?count=1",
  "/sse/",
  "//sse",
  "/./sse",
  "/SSE",
  "/broadcast/../sse?count=1&intervalMs=1",
  "/broadcast/events/..",
  "/broadcast/messages/",
  "/index.html",
  "/demo.ts",
  "/.git/config",
  "/%ff",
  "/\xff\xfe",
  `/${utf8Bytes("é")}`,
  "/a b",
  "/\t",
  "http://127.0.0.1/sse?count=1&intervalMs=1",
  "http://evil.example/broadcast/events",
  "sse",
  "*",
  "/#frag",
  "/sse#x",
  "/%",
  "/%zz",
  "/;",
  "/sse;count=1",
  "/\\..\\demo.ts",
  "/%5c..%5cdemo.ts",
];

const COUNTS = [
  "1",
  "2",
  "3",
  "0",
  "-1",
  "-0",
  "+2",
  "1e3",
  "1e0",
  "%ff",
  "%00",
  "3%00",
  "0x3",
  "3.0",
  "3.5",
  "%203",
  "3%20",
  "",
  "99999999999999999999999",
  "10001",
  "10000",
  "1,2",
  "%EF%BC%93", // FULLWIDTH DIGIT THREE
  "%D9%A3", // ARABIC-INDIC DIGIT THREE
  "NaN",
  "Infinity",
  "true",
  "%",
  "%zz",
  "\xff",
  "9".repeat(400),
];

const INTERVALS = [
  "1",
  "5",
  "10",
  "0",
  "-0",
  "-5",
  "1e3",
  "%ff",
  "",
  "99999999999999999999",
  "5001",
  "5000",
  "2.5",
  "+1",
  "%2B1",
  "1_0",
];

const LAST_EVENT_IDS = [
  "3",
  "0",
  "-1",
  "1",
  "99999999999999999999",
  "1e3",
  "abc",
  "5 ",
  "\t5",
  "",
  utf8Bytes("é1"),
  utf8Bytes("日本語"),
  utf8Bytes("😀"),
  "\xff\xfe",
  "\xc3",
  "\xe2\x82",
  "\xed\xa0\x80", // a surrogate in CESU-8: invalid UTF-8
  "\xf4\x90\x80\x80", // above U+10FFFF
  "\xc0\xaf", // overlong
  "\x80",
  "abcdef-0",
  "abcdef-1",
  "zzzzzz-99999999999999999999",
  "k2f9:12,x8aa:7",
  "1-0",
  "%00",
  "%0d%0adata: forged",
];

/** Header values with bytes HTTP forbids: controls, NUL, bare CR. */
const BAD_VALUES = [
  "a\x01b",
  "a\x7fb",
  "a\x00b",
  "a\rb",
  "\x1b[31mred",
  "a\x0bb",
  "\x08",
];

const MESSAGE_TYPES = [
  "text/plain",
  "text/plain; charset=utf-8",
  "TEXT/PLAIN",
  "text/plain;charset=latin1",
  "text/plain ; x=y",
  "application/json",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "text/plainx",
  "text/html",
  "",
  " text/plain",
  "text/plain\x01",
  "*/*",
];

/** A random text of `n` characters drawn from a nasty alphabet. */
function nastyText(rng: Rng, n: number): string {
  const alphabet = [
    "a",
    "Z",
    " ",
    "\n",
    "\r",
    "\r\n",
    "\t",
    "\0",
    "\x01",
    "\x7f",
    ":",
    "data: x",
    "\n\nevent: forged\ndata: y\n\n",
    "é",
    "日",
    "😀",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\u0301",
    "\u202e",
    "\\",
    '"',
    "<script>",
  ];
  let text = "";
  for (let i = 0; i < n; i++) text += rng.pick(alphabet);
  return text;
}

/** A request: request line, headers (as raw lines), then `body`. */
function http(
  method: string,
  target: string,
  headers: string[],
  body: string | Uint8Array = "",
  version = "HTTP/1.1",
): Uint8Array {
  return join(
    `${method} ${target} ${version}\r\n`,
    ...headers.map((h) => `${h}\r\n`),
    "\r\n",
    body,
  );
}

const HOST = "Host: 127.0.0.1";

/** Splits `bytes` into a few pieces, some sent after a short pause. */
function pieces(
  rng: Rng,
  bytes: Uint8Array,
): { bytes: Uint8Array; delayMs?: number }[] {
  if (bytes.length < 2 || !rng.chance(0.12)) return [{ bytes }];
  const out: { bytes: Uint8Array; delayMs?: number }[] = [];
  let offset = 0;
  while (offset < bytes.length && out.length < 6) {
    const size = out.length === 5
      ? bytes.length - offset
      : rng.range(1, Math.max(1, Math.floor(bytes.length / 3)));
    out.push({
      bytes: bytes.subarray(offset, offset + size),
      delayMs: out.length === 0 ? 0 : rng.range(0, 15),
    });
    offset += size;
  }
  return out;
}

/**
 * Makes hostile requests. `epoch` is the broadcast channel's epoch once
 * known (from an earlier stream's first id), for ids that look like ours.
 */
export class RequestFuzzer {
  epoch: string | undefined;
  constructor(readonly rng: Rng) {}

  next(): HostileRequest {
    const kind = this.rng.weighted(KINDS);
    const request = this.#make(kind);
    if (!request.earlyClose && request.pieces.length === 1) {
      request.pieces = pieces(this.rng, request.pieces[0].bytes);
    }
    return request;
  }

  #make(kind: keyof typeof KINDS): HostileRequest {
    const rng = this.rng;
    switch (kind) {
      case "sse-query": {
        const params: string[] = [];
        const n = rng.range(0, 4);
        for (let i = 0; i < n; i++) {
          params.push(rng.weighted({
            [`count=${rng.pick(COUNTS)}`]: 4,
            [`intervalMs=${rng.pick(INTERVALS)}`]: 4,
            [
              `lastEventId=${
                rng.pick([
                  "2",
                  "1e3",
                  "%ff",
                  "-1",
                  "99999999999999999999",
                  "%00",
                ])
              }`
            ]: 1,
            [
              rng.pick([
                "&&",
                "=",
                "count",
                "x=y",
                "%",
                "&count",
                ";",
                "\xff=1",
              ])
            ]: 1,
          }));
        }
        // Mostly short streams, so that a whole stream is read and checked.
        if (rng.chance(0.6)) params.push("count=2", "intervalMs=5");
        if (rng.chance(0.05)) {
          params.push("pad=" + "x".repeat(rng.range(1000, 30000)));
        }
        const target = `/sse?${params.join("&")}`;
        return {
          kind,
          label: `GET ${target.slice(0, 80)}`,
          route: "/sse",
          pieces: [{ bytes: http("GET", target, [HOST]) }],
        };
      }
      case "last-event-id": {
        const broadcast = rng.chance(0.3);
        const id = this.#lastEventId();
        const target = broadcast
          ? "/broadcast/events"
          : `/sse?count=${rng.range(1, 4)}&intervalMs=${rng.range(1, 10)}`;
        return {
          kind,
          label: `GET ${target} Last-Event-ID ${
            JSON.stringify(id.slice(0, 40))
          } (${id.length} bytes)`,
          route: target.split("?")[0],
          pieces: [{
            bytes: http("GET", target, [HOST, `Last-Event-ID: ${id}`]),
          }],
        };
      }
      case "broadcast-events": {
        const query = rng.chance(0.6)
          ? `?lastEventId=${
            rng.pick([
              "%0d%0adata:%20forged",
              "%00",
              "%ff",
              "%ed%a0%80",
              "-1",
              encodeURIComponent(this.#ourId()),
              encodeURIComponent(this.#ourId()),
              "%" + "41".repeat(10),
              "x".repeat(rng.range(1, 5000)),
            ])
          }`
          : "";
        const headers = [HOST];
        if (rng.chance(0.4)) headers.push(`Last-Event-ID: ${this.#ourId()}`);
        if (rng.chance(0.2)) headers.push("Accept: text/event-stream");
        return {
          kind,
          label: `GET /broadcast/events${query.slice(0, 60)} ${
            headers.slice(1).join(" ")
          }`,
          route: "/broadcast/events",
          pieces: [{
            bytes: http("GET", `/broadcast/events${query}`, headers),
          }],
        };
      }
      case "post-message":
        return this.#post();
      case "method": {
        const method = rng.pick([
          "GET",
          "HEAD",
          "POST",
          "PUT",
          "DELETE",
          "OPTIONS",
          "PATCH",
          "TRACE",
          "CONNECT",
          "get",
          "GETT",
          "G\x00ET",
          "\xc4\xd6",
          "M".repeat(rng.range(100, 5000)),
          "M-SEARCH",
          "BREW",
          "",
        ]);
        const target = method === "CONNECT"
          ? "127.0.0.1:80"
          : method === "OPTIONS" && rng.chance(0.5)
          ? "*"
          : rng.pick(ROUTES);
        const body = method === "POST" || method === "PUT" ? "hello" : "";
        const headers = [HOST];
        if (body) headers.push("Content-Type: text/plain", "Content-Length: 5");
        return {
          kind,
          label: `${JSON.stringify(method.slice(0, 20))} ${target}`,
          head: method === "HEAD",
          pieces: [{ bytes: http(method, target, headers, body) }],
        };
      }
      case "path": {
        const target = rng.chance(0.12)
          ? "/" + rng.pick(["a", "%2e", "../", "sse/"]).repeat(
            rng.pick([2048, 16384, 65536, 200_000]) / 4,
          )
          : rng.pick(PATHS);
        const method = target.startsWith("/broadcast/messages") &&
            rng.chance(0.5)
          ? "POST"
          : "GET";
        const headers = [HOST];
        if (method === "POST") {
          headers.push("Content-Type: text/plain", "Content-Length: 2");
        }
        return {
          kind,
          label: `${method} ${
            JSON.stringify(target.slice(0, 60))
          } (${target.length} bytes)`,
          pieces: [{
            bytes: http(method, target, headers, method === "POST" ? "hi" : ""),
          }],
        };
      }
      case "request-line": {
        const [label, bytes, incomplete] = rng.pick<
          [string, string, boolean?]
        >([
          ["no Host", "GET / HTTP/1.1\r\n\r\n"],
          ["HTTP/0.9", "GET /\r\n\r\n"],
          ["HTTP/2.0", `GET / HTTP/2.0\r\n${HOST}\r\n\r\n`],
          ["HTTP/1.2", `GET / HTTP/1.2\r\n${HOST}\r\n\r\n`],
          ["HTTP/9.9", `GET / HTTP/9.9\r\n${HOST}\r\n\r\n`],
          ["extra token", `GET / HTTP/1.1 extra\r\n${HOST}\r\n\r\n`],
          ["double spaces", `GET  /  HTTP/1.1\r\n${HOST}\r\n\r\n`],
          ["lower-case version", `GET / http/1.1\r\n${HOST}\r\n\r\n`],
          ["tabs", `GET\t/\tHTTP/1.1\r\n${HOST}\r\n\r\n`],
          [
            "LF only",
            `GET /sse?count=1&intervalMs=1 HTTP/1.1\n${HOST}\n\n`,
          ],
          ["leading blank lines", `\r\n\r\nGET / HTTP/1.1\r\n${HOST}\r\n\r\n`],
          ["bare CR", `GET / HTTP/1.1\r${HOST}\r\r`, true],
          ["NULs", "\x00\x00\x00\x00\r\n\r\n"],
          ["HTTP/1.0", "GET / HTTP/1.0\r\n\r\n"],
          [
            "HTTP/1.0 stream",
            "GET /sse?count=2&intervalMs=5 HTTP/1.0\r\n\r\n",
          ],
          [
            "HTTP/1.0 broadcast",
            "GET /broadcast/events HTTP/1.0\r\n\r\n",
          ],
          ["leading space", ` GET / HTTP/1.1\r\n${HOST}\r\n\r\n`],
          [
            "long spaces",
            `GET ${
              " ".repeat(rng.range(100, 100_000))
            }/ HTTP/1.1\r\n${HOST}\r\n\r\n`,
          ],
          [
            "h2 preface",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            true, // the server then waits for HTTP/2 frames
          ],
          [
            "TLS hello",
            "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + "\x00".repeat(32),
            true,
          ],
          ["only CRLF", "\r\n", true],
          ["no end of head", `GET / HTTP/1.1\r\n${HOST}\r\n`, true],
          [
            "invalid UTF-8 target",
            `GET /\xc3\x28\xa0\xa1 HTTP/1.1\r\n${HOST}\r\n\r\n`,
          ],
        ]);
        return {
          kind,
          label,
          incomplete,
          pieces: [{ bytes: latin1(bytes) }],
        };
      }
      case "headers":
        return this.#headers();
      case "early-close": {
        const inner = rng.chance(0.5) ? this.#post() : this.#make("sse-query");
        const bytes = inner.pieces.map((p) => p.bytes).reduce((a, b) =>
          join(a, b)
        );
        const cut = rng.chance(0.3)
          ? bytes.length
          : rng.range(0, bytes.length - 1);
        return {
          kind,
          label: `${
            inner.label.slice(0, 60)
          }, closed after ${cut} of ${bytes.length} bytes`,
          earlyClose: true,
          pieces: [{ bytes: bytes.subarray(0, cut) }],
        };
      }
      case "pipelined": {
        const parts = [
          http("GET", "/sse?count=1&intervalMs=1", [HOST]),
          http("GET", "/broadcast/events", [HOST]),
          http("POST", "/broadcast/messages", [
            HOST,
            "Content-Type: text/plain",
            "Content-Length: 4",
          ], "pipe"),
          latin1("GARBAGE\r\n\r\n"),
          http("GET", "/favicon.svg", [HOST]),
        ];
        const n = rng.range(2, 4);
        const chosen = Array.from({ length: n }, () => rng.pick(parts));
        return {
          kind,
          label: `${n} pipelined requests`,
          pieces: [{ bytes: join(...chosen) }],
        };
      }
      case "half-close":
        return {
          kind,
          label: "GET /sse, then the write side shut",
          closeWrite: true,
          pieces: [{
            bytes: http("GET", "/sse?count=2&intervalMs=5", [HOST]),
          }],
        };
      case "binary": {
        const bytes = rng.bytes(rng.range(1, 4096));
        return {
          kind,
          label: `${bytes.length} random bytes`,
          incomplete: true,
          pieces: [{ bytes }],
        };
      }
    }
  }

  /** An id that looks like the broadcast channel's, right or wrong. */
  #ourId(): string {
    const rng = this.rng;
    const epoch = this.epoch ?? "abcdef";
    return rng.pick([
      `${epoch}-0`,
      `${epoch}-${rng.range(1, 50)}`,
      `${epoch}-${rng.range(1, 5)}`,
      `${epoch}-99999999999999999999`,
      `${epoch}-01`,
      `${epoch}--1`,
      `${epoch}-`,
      `${epoch}`,
      `${epoch.toUpperCase()}-1`,
      `zzzzzz-1`,
    ]);
  }

  #lastEventId(): string {
    const rng = this.rng;
    const roll = rng.int(10);
    if (roll === 0) {
      // 100 KB, more than any server should take.
      return rng.pick(["9", "a", "\xff", utf8Bytes("é")]).repeat(
        rng.pick([100_000, 100_000, 50_000]) /
          (rng.chance(0.25) ? 2 : 1),
      );
    }
    if (roll === 1) return rng.pick(BAD_VALUES);
    if (roll === 2) return this.#ourId();
    return rng.pick(LAST_EVENT_IDS);
  }

  #headers(): HostileRequest {
    const rng = this.rng;
    const target = rng.pick(ROUTES);
    const method = target === "/broadcast/messages" ? "POST" : "GET";
    const headers = [HOST];
    let label: string;
    let incomplete = false;
    switch (rng.int(9)) {
      case 0: {
        const size = rng.pick([16_384, 65_536, 65_536, 100_000, 400_000]);
        headers.push(`X-Big: ${"a".repeat(size)}`);
        label = `one ${size}-byte header`;
        break;
      }
      case 1: {
        const n = rng.pick([100, 500, 2000, 20_000]);
        for (let i = 0; i < n; i++) headers.push(`X-H${i}: ${i}`);
        label = `${n} headers`;
        break;
      }
      case 2: {
        const value = rng.pick(BAD_VALUES);
        headers.push(`X-Bad: ${value}`);
        label = `header value ${JSON.stringify(value)}`;
        break;
      }
      case 3: {
        const line = rng.pick([
          "Bad Header: x",
          "X\x01: y",
          `X-${utf8Bytes("é")}: y`,
          ": novalue",
          "NoColon",
          "X-Fold: a\r\n b",
          "X-Fold: a\r\n\tb",
          " Leading: space",
          "X-Empty:",
          "X:" + "\xff".repeat(100),
        ]);
        headers.push(line);
        label = `header line ${JSON.stringify(line)}`;
        break;
      }
      case 4: {
        const host = rng.pick([
          ["Host: a", "Host: b"],
          ["Host: "],
          ["Host: a b"],
          ["Host: \xff"],
          ["Host: [::1"],
          ["Host: 127.0.0.1:99999"],
          ["Host: a?b"],
          ["Host: a#b"],
          ["Host: a/b"],
          ["Host: \\"],
          ["Host: a@b"],
        ]);
        headers.splice(0, 1, ...host);
        label = `host ${JSON.stringify(host)}`;
        break;
      }
      case 5: {
        const set = rng.pick([
          ["Upgrade: websocket", "Connection: Upgrade"],
          ["Upgrade: h2c", "Connection: Upgrade, HTTP2-Settings"],
          ["Expect: 100-continue"],
          ["Expect: nonsense"],
          ["Connection: close"],
          ["Connection: keep-alive, close, x"],
          ["Accept-Encoding: gzip, br"],
          ["TE: trailers"],
        ]);
        headers.push(...set);
        label = set.join(", ");
        break;
      }
      case 6: {
        // A body on a GET: some framing the handler never reads.
        const set = rng.pick([
          ["Content-Length: 5"],
          ["Content-Length: -1"],
          ["Content-Length: abc"],
          ["Transfer-Encoding: chunked"],
          ["Transfer-Encoding: gzip"],
          ["Content-Length: 3", "Transfer-Encoding: chunked"],
        ]);
        headers.push(...set);
        label = `GET with ${set.join(", ")}`;
        incomplete = set[0] === "Content-Length: 5" ||
          set.includes("Transfer-Encoding: chunked");
        break;
      }
      case 7: {
        const name = rng.pick(["Cookie", "Authorization", "Referer", "Origin"]);
        const value = nastyText(rng, rng.range(1, 200)).replace(/[\r\n]/g, "");
        headers.push(`${name}: ${utf8Bytes(value)}`);
        label = `${name} with nasty text`;
        break;
      }
      default: {
        headers.push(
          `Accept: ${utf8Bytes(nastyText(rng, 30).replace(/[\r\n\0]/g, ""))}`,
        );
        headers.push(`Last-Event-ID: ${this.#lastEventId()}`);
        label = "nasty Accept and Last-Event-ID";
      }
    }
    const body = method === "POST" ? "hi" : "";
    if (method === "POST") {
      headers.push("Content-Type: text/plain", "Content-Length: 2");
    }
    return {
      kind: "headers",
      label: `${method} ${target}: ${label.slice(0, 80)}`,
      route: target.split("?")[0],
      incomplete,
      pieces: [{ bytes: http(method, target, headers, body) }],
    };
  }

  /** A POST to /broadcast/messages: odd bodies, types and framing. */
  #post(): HostileRequest {
    const rng = this.rng;
    let body: Uint8Array;
    let bodyLabel: string;
    switch (rng.int(12)) {
      case 0:
        body = rng.bytes(rng.range(1, 600));
        bodyLabel = "random bytes";
        break;
      case 1:
        body = latin1(
          rng.pick(["\xff\xfe", "a\xc3", "\xed\xa0\x80", "\xc0\xaf", "ok\x80"]),
        );
        bodyLabel = "invalid UTF-8";
        break;
      case 2:
        body = new Uint8Array(0);
        bodyLabel = "empty";
        break;
      case 3:
        body = UTF8.encode(rng.pick([" ", "\n\t ", "\ufeff"]));
        bodyLabel = "blank";
        break;
      case 4: {
        const n = rng.pick([500, 501, 2000, 2001, 100_000]);
        body = UTF8.encode("m".repeat(n));
        bodyLabel = `${n} characters`;
        break;
      }
      case 5:
        body = UTF8.encode("😀".repeat(rng.pick([250, 251, 500])));
        bodyLabel = "emoji";
        break;
      default: {
        const text = nastyText(rng, rng.range(1, 60));
        body = UTF8.encode(text);
        bodyLabel = "nasty text";
      }
    }
    const type = rng.chance(0.7) ? "text/plain" : rng.pick(MESSAGE_TYPES);
    const headers = [HOST];
    if (!rng.chance(0.08)) headers.push(`Content-Type: ${type}`);
    let framed: Uint8Array = body;
    let framing = "content-length";
    let incomplete = false;
    switch (
      rng.weighted({
        length: 10,
        none: 1,
        short: 1,
        long: 1,
        negative: 1,
        junk: 1,
        two: 1,
        chunked: 3,
        badChunk: 1,
        unfinishedChunk: 1,
        both: 1,
      })
    ) {
      case "length":
        headers.push(`Content-Length: ${body.length}`);
        break;
      case "none":
        framing = "no length";
        break;
      case "short":
        headers.push(`Content-Length: ${Math.max(0, body.length - 3)}`);
        framing = "length too short";
        break;
      case "long":
        headers.push(`Content-Length: ${body.length + rng.range(1, 100)}`);
        framing = "length too long";
        incomplete = true;
        break;
      case "negative":
        headers.push("Content-Length: -5");
        framing = "negative length";
        break;
      case "junk":
        headers.push(
          `Content-Length: ${
            rng.pick(["abc", "1e3", "+5", "0x10", " ", "5 5"])
          }`,
        );
        framing = "junk length";
        break;
      case "two":
        headers.push(
          `Content-Length: ${body.length}`,
          `Content-Length: ${body.length + 1}`,
        );
        framing = "two lengths";
        break;
      case "chunked": {
        framed = chunk(rng, body, true);
        headers.push("Transfer-Encoding: chunked");
        framing = "chunked";
        break;
      }
      case "badChunk":
        framed = join(
          rng.pick(["zz\r\n", "-1\r\n", "fffffffffffffffff\r\n", "5\n"]),
          body,
          "\r\n0\r\n\r\n",
        );
        headers.push("Transfer-Encoding: chunked");
        framing = "bad chunk size";
        break;
      case "unfinishedChunk":
        framed = chunk(rng, body, false);
        headers.push("Transfer-Encoding: chunked");
        framing = "chunked without its last chunk";
        incomplete = true;
        break;
      case "both":
        headers.push(
          `Content-Length: ${body.length}`,
          "Transfer-Encoding: chunked",
        );
        framed = chunk(rng, body, true);
        framing = "length and chunked";
        break;
    }
    return {
      kind: "post-message",
      label: `POST /broadcast/messages ${bodyLabel} (${body.length} bytes) as ${
        JSON.stringify(type)
      }, ${framing}`,
      incomplete,
      pieces: [{ bytes: http("POST", "/broadcast/messages", headers, framed) }],
    };
  }
}

/** `body` as chunked transfer coding, in random chunks, ended or not. */
function chunk(rng: Rng, body: Uint8Array, end: boolean): Uint8Array {
  const parts: (string | Uint8Array)[] = [];
  let offset = 0;
  while (offset < body.length) {
    const size = rng.range(1, Math.max(1, body.length - offset));
    const ext = rng.chance(0.1) ? ";x=y" : "";
    parts.push(
      `${size.toString(16)}${ext}\r\n`,
      body.subarray(offset, offset + size),
      "\r\n",
    );
    offset += size;
  }
  if (end) {
    parts.push(rng.chance(0.1) ? "0\r\nX-Trailer: t\r\n\r\n" : "0\r\n\r\n");
  }
  return join(...parts);
}
