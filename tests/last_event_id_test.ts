// lastEventId() on what a real Deno.serve hands over: a raw TCP client sends
// `Last-Event-ID` as bytes, the way a browser does (UTF-8), and as bytes that
// are not UTF-8; and `?lastEventId=` in UTF-8 percent-encoding.
import assert from "node:assert/strict";
import { lastEventId, SseChannel } from "../mod.ts";
import { createDemo } from "../demo.ts";
import { delay, withServer } from "./util.ts";

const ENCODER = new TextEncoder();

/** What the server saw: the raw header and lastEventId(request). */
interface Seen {
  header: string | null;
  id: string | null;
}

function handler(request: Request): Response {
  return Response.json(
    {
      header: request.headers.get("last-event-id"),
      id: lastEventId(request) ?? null,
    } satisfies Seen,
  );
}

/** A GET over a raw TCP connection, with `Last-Event-ID: ` then `value`. */
async function rawGet(url: URL, value?: Uint8Array): Promise<Seen> {
  const conn = await Deno.connect({
    hostname: url.hostname,
    port: Number(url.port),
  });
  const head = ENCODER.encode(
    `GET /sse HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n` +
      (value === undefined ? "" : "Last-Event-ID: "),
  );
  const tail = ENCODER.encode(value === undefined ? "\r\n" : "\r\n\r\n");
  await conn.write(new Uint8Array([...head, ...(value ?? []), ...tail]));
  const response = new TextDecoder().decode(
    await new Response(conn.readable).arrayBuffer(),
  );
  assert.match(response, /^HTTP\/1\.1 200 /, response);
  return JSON.parse(response.slice(response.indexOf("\r\n\r\n") + 4));
}

Deno.test("lastEventId() decodes the UTF-8 bytes a client sends", async (t) => {
  await withServer(handler, async (url) => {
    await t.step("a UTF-8 header: 2-, 3- and 4-byte characters", async () => {
      const id = "é1-ü✓😀";
      const seen = await rawGet(url, ENCODER.encode(id));
      // Deno gives the header one byte per character...
      assert.equal(
        seen.header,
        String.fromCharCode(...ENCODER.encode(id)),
        "the premise: Deno hands the header over as Latin-1",
      );
      // ...and lastEventId() gives back what the client meant.
      assert.equal(seen.id, id);
    });

    await t.step(
      "bytes that are not UTF-8 come back as they came",
      async () => {
        // 0xC3 starts a 2-byte sequence, but 0x28 is "(", not a continuation.
        assert.equal(
          (await rawGet(url, new Uint8Array([0xc3, 0x28]))).id,
          "\u00c3(",
        );
        // "é" in Latin-1, one byte: a lone lead byte.
        assert.equal(
          (await rawGet(url, new Uint8Array([0x31, 0xe9]))).id,
          "1\u00e9",
        );
        // Valid UTF-8 next to an invalid byte: the whole value stays as is.
        const mixed = new Uint8Array([...ENCODER.encode("é"), 0xff]);
        assert.equal(
          (await rawGet(url, mixed)).id,
          String.fromCharCode(...mixed),
        );
      },
    );

    await t.step("ASCII, and no header at all", async () => {
      assert.equal(
        (await rawGet(url, ENCODER.encode("k2f9x1-41"))).id,
        "k2f9x1-41",
      );
      assert.deepEqual(await rawGet(url), { header: null, id: null });
    });

    await t.step(
      "a ?lastEventId= query in UTF-8 percent-encoding",
      async () => {
        const id = "é1-ü✓😀";
        const query = new URL(
          `/sse?lastEventId=${encodeURIComponent(id)}`,
          url,
        );
        assert.equal(
          query.search,
          "?lastEventId=%C3%A91-%C3%BC%E2%9C%93%F0%9F%98%80",
        );
        const seen: Seen = await (await fetch(query)).json();
        assert.deepEqual(seen, { header: null, id });
      },
    );
  });
});

/** Status lines of raw GETs of `path` with each Host header. */
async function withHosts(
  url: URL,
  path: string,
  hosts: string[],
): Promise<string[]> {
  const lines: string[] = [];
  for (const host of hosts) {
    const conn = await Deno.connect({
      hostname: url.hostname,
      port: Number(url.port),
    });
    await conn.write(
      ENCODER.encode(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`),
    );
    const buffer = new Uint8Array(1024);
    const n = await conn.read(buffer);
    conn.close();
    lines.push(
      new TextDecoder().decode(buffer.subarray(0, n ?? 0)).split("\r\n")[0],
    );
  }
  return lines;
}

const BAD_HOSTS = ["a b", "[::1", "127.0.0.1:99999", "a?b", "a#b", "\\", "x/y"];

Deno.test("lastEventId() and SseChannel.connect hold with a Host header that is not a host", async () => {
  const channel = new SseChannel({ keepAlive: 0 });
  await withServer((request) => channel.connect(request), async (url) => {
    const lines = await withHosts(url, "/?lastEventId=x", BAD_HOSTS);
    assert.deepEqual(lines, BAD_HOSTS.map(() => "HTTP/1.1 200 OK"));
    while (channel.size > 0) await delay(1);
  });
  channel.close();
});

Deno.test("The demo answers a Host header that is not a host with 400", async () => {
  const demo = createDemo({ log: () => {} });
  await withServer(demo.handler, async (url) => {
    const lines = await withHosts(url, "/sse?count=1&intervalMs=1", [
      ...BAD_HOSTS,
      url.host,
    ]);
    assert.deepEqual(lines, [
      ...BAD_HOSTS.map(() => "HTTP/1.1 400 Bad Request"),
      "HTTP/1.1 200 OK",
    ]);
    while (demo.stats.open > 0) await delay(1);
  });
  demo.shutdown();
});
