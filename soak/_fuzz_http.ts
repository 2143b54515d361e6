// Raw HTTP/1.1 over TCP for the fuzz scenarios: requests sent as bytes, so
// that they can be as malformed as wanted, and one response read back with
// its framing decoded by hand (fetch would refuse to send most of them).

import { Proc, script } from "./_util.ts";

/** The demo process, listening on a port of the system's choosing. */
export interface Demo {
  proc: Proc;
  port: number;
  /** True while the process runs. */
  alive(): boolean;
}

/** Starts `deno run -A demo.ts --port 0 --log-level warn`; waits for its URL. */
export async function startDemo(): Promise<Demo> {
  const proc = new Proc(
    script("../demo.ts", "--port", "0", "--log-level", "warn"),
  );
  let running = true;
  proc.exited.then(() => running = false);
  const line = await proc.waitFor(/^\s+page:\s+http:\/\/127\.0\.0\.1:\d+\//);
  const port = Number(/:(\d+)\//.exec(line)![1]);
  return { proc, port, alive: () => running };
}

/** One request, as bytes, and how to read its answer. */
export interface Exchange {
  port: number;
  /** Sent in order, each after its delay. */
  pieces: { bytes: Uint8Array; delayMs?: number }[];
  /** Close the socket once sent, reading nothing: a client that leaves. */
  earlyClose?: boolean;
  /** Shut the write side once sent (a half-close), then read. */
  closeWrite?: boolean;
  /** The method was HEAD: a response has no body. */
  head?: boolean;
  /** How long to wait for a response (head and body), in ms. */
  timeoutMs: number;
  /** Read an event stream for at most this long once its head is in. */
  streamMs: number;
  /** Read at most this many bytes of a body. */
  maxBody: number;
}

/** What came back. */
export interface Outcome {
  /**
   * `response`: a status line came; `closed`: the server closed the socket
   * without one; `reset`: the connection was reset before one; `timeout`:
   * none within `timeoutMs`; `early-close`: we left first, on purpose;
   * `connect-error`: no connection.
   */
  kind:
    | "response"
    | "closed"
    | "reset"
    | "timeout"
    | "early-close"
    | "connect-error";
  status?: number;
  /** Lower-cased header names. */
  headers?: Map<string, string>;
  /** The decoded body (chunked framing removed), up to `maxBody`. */
  body?: Uint8Array;
  /** True if the server ended the body; false if we stopped reading first. */
  bodyComplete?: boolean;
  /** True if the server closed the connection in the middle of the body. */
  cut?: boolean;
  /** The response itself broke HTTP framing (the server's fault). */
  malformed?: string;
  error?: string;
}

const HEAD_END = new Uint8Array([13, 10, 13, 10]);
const MAX_HEAD = 65_536;
const LATIN1 = new TextDecoder("latin1");

function indexOf(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    offset += await conn.write(bytes.subarray(offset));
  }
}

/**
 * Decodes a chunked body incrementally: `feed` bytes as they come, read
 * `body`; `done` once the last chunk and trailers are in.
 */
class Dechunker {
  body: Uint8Array = new Uint8Array(0);
  done = false;
  malformed: string | undefined;
  #buffer: Uint8Array = new Uint8Array(0);
  #left = -1; // bytes left of the current chunk; -1: a size line is due
  #trailers = false;

  feed(bytes: Uint8Array): void {
    this.#buffer = concat(this.#buffer, bytes);
    const parts: Uint8Array[] = [];
    while (!this.done && this.malformed === undefined) {
      if (this.#trailers) {
        const end = indexOf(this.#buffer, HEAD_END.subarray(2));
        if (end === -1) break;
        const line = this.#buffer.subarray(0, end);
        this.#buffer = this.#buffer.subarray(end + 2);
        if (line.length === 0) this.done = true;
      } else if (this.#left === -1) {
        const end = indexOf(this.#buffer, HEAD_END.subarray(2));
        if (end === -1) {
          if (this.#buffer.length > 1024) this.malformed = "chunk size line";
          break;
        }
        const line = LATIN1.decode(this.#buffer.subarray(0, end));
        this.#buffer = this.#buffer.subarray(end + 2);
        const match = /^([0-9a-fA-F]+)(;.*)?$/.exec(line);
        if (match === null) {
          this.malformed = `chunk size line ${JSON.stringify(line)}`;
          break;
        }
        const size = parseInt(match[1], 16);
        if (size === 0) this.#trailers = true;
        else this.#left = size;
      } else if (this.#left > 0) {
        if (this.#buffer.length === 0) break;
        const take = Math.min(this.#left, this.#buffer.length);
        parts.push(this.#buffer.subarray(0, take));
        this.#buffer = this.#buffer.subarray(take);
        this.#left -= take;
      } else {
        if (this.#buffer.length < 2) break;
        if (this.#buffer[0] !== 13 || this.#buffer[1] !== 10) {
          this.malformed = "no CRLF after a chunk";
          break;
        }
        this.#buffer = this.#buffer.subarray(2);
        this.#left = -1;
      }
    }
    for (const part of parts) this.body = concat(this.body, part);
  }
}

/** Parses a response head; `undefined` if it is not one. */
function parseHead(
  head: string,
): { status: number; headers: Map<string, string> } | undefined {
  const [statusLine, ...lines] = head.split("\r\n");
  const match = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine);
  if (match === null) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers.set(
      name,
      headers.has(name) ? `${headers.get(name)}, ${value}` : value,
    );
  }
  return { status: Number(match[1]), headers };
}

/**
 * Sends a request and reads one response, bounded in time and size. Never
 * throws: every way it can end is an {@linkcode Outcome}.
 */
export async function exchange(options: Exchange): Promise<Outcome> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port: options.port });
  } catch (error) {
    return { kind: "connect-error", error: String(error) };
  }
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  };
  let stopped: "timeout" | "stream" | undefined;
  let timer = setTimeout(() => {
    stopped = "timeout";
    close();
  }, options.timeoutMs);
  // Written while reading: the server may answer (431, say) before it has
  // read the whole request, and stop reading it.
  const sending = (async () => {
    for (const piece of options.pieces) {
      if (piece.delayMs) {
        await new Promise((resolve) => setTimeout(resolve, piece.delayMs));
      }
      if (closed) return;
      await writeAll(conn, piece.bytes);
    }
    if (options.closeWrite && !closed) await conn.closeWrite();
  })().catch(() => {});
  if (options.earlyClose) {
    await sending;
    clearTimeout(timer);
    close();
    return { kind: "early-close" };
  }

  let buffer: Uint8Array = new Uint8Array(0);
  let head: ReturnType<typeof parseHead>;
  let body: Uint8Array = new Uint8Array(0);
  let dechunker: Dechunker | undefined;
  let length = -1; // content-length, or -1: until the server closes
  let bodyComplete = false;
  let cut = false;
  let outcome: Outcome | undefined;
  const chunk = new Uint8Array(65_536);
  try {
    for (;;) {
      if (head === undefined) {
        const end = indexOf(buffer, HEAD_END);
        if (end !== -1) {
          head = parseHead(LATIN1.decode(buffer.subarray(0, end)));
          const rest = buffer.subarray(end + 4);
          if (head === undefined) {
            outcome = { kind: "response", malformed: "response head" };
            break;
          }
          if (head.status >= 100 && head.status < 200) {
            head = undefined; // an interim response: the real one follows
            buffer = rest;
            continue;
          }
          buffer = new Uint8Array(0);
          const { status, headers } = head;
          if (
            options.head || status === 204 || status === 304
          ) {
            bodyComplete = true;
            break;
          }
          if (/text\/event-stream/i.test(headers.get("content-type") ?? "")) {
            // A stream may last for hours: read only a sample of it.
            clearTimeout(timer);
            timer = setTimeout(() => {
              stopped = "stream";
              close();
            }, options.streamMs);
          }
          if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) {
            dechunker = new Dechunker();
            dechunker.feed(rest);
          } else if (headers.has("content-length")) {
            length = Number(headers.get("content-length"));
            if (!Number.isSafeInteger(length) || length < 0) {
              outcome = { kind: "response", malformed: "content-length" };
              break;
            }
            body = rest.slice(0, length);
          } else {
            body = rest.slice();
          }
        } else if (buffer.length > MAX_HEAD) {
          outcome = { kind: "response", malformed: "response head too long" };
          break;
        }
      }
      if (head !== undefined) {
        if (dechunker) {
          body = dechunker.body;
          if (dechunker.malformed) {
            outcome = { kind: "response", malformed: dechunker.malformed };
            break;
          }
          if (dechunker.done) {
            bodyComplete = true;
            break;
          }
        } else if (length >= 0 && body.length >= length) {
          bodyComplete = true;
          break;
        }
        if (body.length >= options.maxBody) break;
      }
      const n = await conn.read(chunk);
      if (n === null) {
        // The server closed: the end of a body without a length, or no
        // response at all.
        if (head === undefined) outcome = { kind: "closed" };
        else if (!dechunker && length < 0) bodyComplete = true;
        else cut = true;
        break;
      }
      const bytes = chunk.slice(0, n);
      if (head === undefined) buffer = concat(buffer, bytes);
      else if (dechunker) dechunker.feed(bytes);
      else body = concat(body, bytes);
    }
  } catch (error) {
    if (stopped === undefined) {
      const reset = error instanceof Deno.errors.ConnectionReset ||
        error instanceof Deno.errors.BrokenPipe;
      if (head === undefined) {
        outcome = reset
          ? { kind: "reset", error: String(error) }
          : { kind: "closed", error: String(error) };
      }
    } else if (head === undefined) {
      outcome = { kind: "timeout" };
    }
  } finally {
    clearTimeout(timer);
    close();
    await sending;
  }
  if (outcome !== undefined && outcome.kind !== "response") return outcome;
  if (head === undefined) return outcome ?? { kind: "timeout" };
  return {
    kind: "response",
    status: head.status,
    headers: head.headers,
    body: body.subarray(0, Math.min(body.length, options.maxBody)),
    bodyComplete,
    cut,
    malformed: outcome?.malformed,
  };
}
