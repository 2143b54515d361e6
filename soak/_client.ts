// A client process for the soak scenarios: raw HTTP/1.1 over TCP
// (Deno.connect, no fetch, whose own buffering would hide what the server
// does), with its own chunked-body decoder and incremental SSE parser. The
// last line it prints on stdout is its JSON result.
//
//   deno run -A soak/_client.ts MODE --port P [--path /events] [options]
//
// hold   --conns N --first F --last L [--id-seq] [--deadline MS]
//        [--concurrency C] [--buffer BYTES] [--progress K]
//        Opens N connections (C at a time, each waiting for its head), reads
//        every event, and checks that each connection gets the data seqs
//        F..L, each once, in order, every event with an id strictly after the
//        one before (the first block's id included) and, with --id-seq, ids
//        whose number is the seq (`epoch-k`, or `k`); no `reset`. A
//        connection closes once it has seq L. With --progress K it prints
//        {"progress": s} whenever the least seq that every connection has
//        reached grows by K (a sender can pace itself on it).
// churn  --cycles K [--lanes L] [--deadline MS] [--timeout MS]
//        K cycles, L at a time, of connect / maybe read / close, leaving at
//        every point in turn: half a request line; right after the request,
//        before the head; after the head; mid-event (some bytes of a block,
//        not its blank line); after 1 to 4 events.
// stuck  --conns N [--hold MS] [--deadline MS]
//        Opens N connections and sends the request, then never reads, until
//        --hold ms pass or SIGUSR2 arrives; then drains each until its
//        response ends (or the deadline) and checks what came: events in
//        order, nothing cut in the middle of an event, and the end.
//        (Not SIGUSR1: that starts Deno's inspector.)
//
// Imported (not run), it exports the result types, `Client` (a client
// process with its progress lines and result) and sums of several results.

import { parseArgs } from "node:util";
import { Proc, script } from "./_util.ts";

/** What `hold` prints last. */
export interface HoldResult {
  mode: "hold";
  conns: number;
  /** Connections that got a 200 head. */
  connected: number;
  /** Connections that got F..L in order, with no violation. */
  complete: number;
  /** Connections with at least one violation, and the first of them. */
  violating: number;
  violations: string[];
  /** Data events received, over all connections. */
  events: number;
  /** Body bytes received, over all connections. */
  bytes: number;
  /** Comment lines (keep-alives) received. */
  comments: number;
  /** The distinct first and last ids seen (at most 5 each). */
  firstIds: string[];
  lastIds: string[];
  /** Date.now() when every connection had its head. */
  connectedAt: number;
  /** Date.now() when seq F first arrived, and when the last got seq L. */
  firstEventAt: number | null;
  doneAt: number;
  /** Connects tried again after a refusal. */
  retries: number;
  errors: string[];
}

/** What `churn` prints last. */
export interface ChurnResult {
  mode: "churn";
  cycles: number;
  /** Cycles run to their end (whatever happened in them). */
  done: number;
  /** Cycles that left at each point, having reached it. */
  left: Record<string, number>;
  /** The response ended before the point was reached. */
  early: number;
  /** A response that was not a chunked 200 event stream. */
  bad: number;
  /** Cycles that waited --timeout for the server. */
  timeouts: number;
  /** The server reset a connection that was owed more. */
  resets: number;
  /** Data events read, over all cycles. */
  events: number;
  errors: string[];
}

/** What `stuck` prints last. */
export interface StuckResult {
  mode: "stuck";
  conns: number;
  /** Responses that ended (the server let the client go). */
  ended: number;
  violating: number;
  violations: string[];
  /** Data events drained, over all connections. */
  events: number;
  /** Body bytes each connection got, least and most. */
  minBytes: number;
  maxBytes: number;
}

/**
 * A client process started by a scenario: its progress lines as they come,
 * a signal to send, and its result (the last JSON line) once it ends.
 */
export class Client<T> {
  readonly proc: Proc;

  /** Starts `_client.ts MODE --port PORT ...flags`. */
  constructor(mode: string, port: number, flags: string[]) {
    this.proc = new Proc(
      script("_client.ts", mode, "--port", String(port), ...flags),
    );
  }

  /** The last `{"progress": s}` it printed, or `fallback`. */
  progress(fallback: number): number {
    const lines = this.proc.lines;
    for (let i = lines.length - 1; i >= 0; i--) {
      if (lines[i].startsWith('{"progress"')) {
        return JSON.parse(lines[i]).progress;
      }
    }
    return fallback;
  }

  /** Waits for the process to end; its result, or an error with its output. */
  async result(): Promise<T> {
    const status = await this.proc.exited;
    const last = this.proc.lines.filter((line) => line.startsWith("{")).at(-1);
    if (
      !status.success || last === undefined || last.startsWith('{"progress"')
    ) {
      throw new Error(
        `Client failed (${status.code}):\n${
          this.proc.lines.slice(-20).join("\n")
        }`,
      );
    }
    return JSON.parse(last) as T;
  }
}

/** Adds up the results of several `hold` processes. */
export function sumHold(results: HoldResult[]): HoldResult {
  const union = (pick: (r: HoldResult) => string[]) =>
    [...new Set(results.flatMap(pick))].slice(0, 5);
  const sum = (pick: (r: HoldResult) => number) =>
    results.reduce((n, r) => n + pick(r), 0);
  const firsts = results.map((r) => r.firstEventAt ?? Infinity);
  return {
    mode: "hold",
    conns: sum((r) => r.conns),
    connected: sum((r) => r.connected),
    complete: sum((r) => r.complete),
    violating: sum((r) => r.violating),
    violations: results.flatMap((r) => r.violations).slice(0, 10),
    events: sum((r) => r.events),
    bytes: sum((r) => r.bytes),
    comments: sum((r) => r.comments),
    firstIds: union((r) => r.firstIds),
    lastIds: union((r) => r.lastIds),
    connectedAt: Math.max(...results.map((r) => r.connectedAt)),
    firstEventAt: Math.min(...firsts) === Infinity ? null : Math.min(...firsts),
    doneAt: Math.max(...results.map((r) => r.doneAt)),
    retries: sum((r) => r.retries),
    errors: results.flatMap((r) => r.errors).slice(0, 10),
  };
}

/** Adds up the results of several `churn` processes. */
export function sumChurn(results: ChurnResult[]): ChurnResult {
  const sum = (pick: (r: ChurnResult) => number) =>
    results.reduce((n, r) => n + pick(r), 0);
  const left: Record<string, number> = {};
  for (const r of results) {
    for (const [point, n] of Object.entries(r.left)) {
      left[point] = (left[point] ?? 0) + n;
    }
  }
  return {
    mode: "churn",
    cycles: sum((r) => r.cycles),
    done: sum((r) => r.done),
    left,
    early: sum((r) => r.early),
    bad: sum((r) => r.bad),
    timeouts: sum((r) => r.timeouts),
    resets: sum((r) => r.resets),
    events: sum((r) => r.events),
    errors: results.flatMap((r) => r.errors).slice(0, 10),
  };
}

// ------------------------------------------------------------------------
// The client itself, when run.

/** The command line, read by main(). */
function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: "string" },
      path: { type: "string", default: "/events" },
      conns: { type: "string", default: "1" },
      first: { type: "string", default: "1" },
      last: { type: "string", default: "1" },
      "id-seq": { type: "boolean", default: false },
      deadline: { type: "string", default: "60000" },
      concurrency: { type: "string", default: "100" },
      buffer: { type: "string", default: "16384" },
      progress: { type: "string", default: "0" },
      cycles: { type: "string", default: "1" },
      lanes: { type: "string", default: "8" },
      timeout: { type: "string", default: "5000" },
      hold: { type: "string", default: "60000" },
    },
  });
}

let args!: ReturnType<typeof parse>["values"];
let port = 0;
let deadline = 0;
let REQUEST = new Uint8Array();
const ENCODER = new TextEncoder();
const CR = 13, LF = 10;

/** Resolves after `ms` milliseconds. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Closes a connection that may be closed already. */
function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}

/**
 * Reads one HTTP/1.1 response: the head, then a chunked body, whose bytes
 * go to `onBody`. `ended` is set by the last chunk (`0\r\n\r\n`) or a body
 * without chunking that the server closed.
 */
class ResponseReader {
  status = 0;
  head = "";
  headDone = false;
  chunked = false;
  ended = false;
  bodyBytes = 0;
  /** Something that is not HTTP as we expect it. */
  error: string | undefined;
  #headBytes: number[] = [];
  /** Bytes left in the current chunk; -1 while reading a size line. */
  #left = -1;
  #sizeLine = "";
  /** Bytes of CRLF after a chunk's data still to skip. */
  #skip = 0;
  #onBody: (bytes: Uint8Array) => void;

  constructor(onBody: (bytes: Uint8Array) => void) {
    this.#onBody = onBody;
  }

  /** Feeds bytes as they come; `bytes` is not kept. */
  feed(bytes: Uint8Array): void {
    let i = 0;
    if (!this.headDone) {
      for (; i < bytes.length && !this.headDone; i++) {
        this.#headBytes.push(bytes[i]);
        const h = this.#headBytes, n = h.length;
        if (
          n >= 4 && h[n - 1] === LF && h[n - 2] === CR && h[n - 3] === LF &&
          h[n - 4] === CR
        ) {
          this.headDone = true;
          this.head = new TextDecoder().decode(new Uint8Array(h));
          this.#headBytes = [];
          this.status = Number(this.head.slice(9, 12));
          this.chunked = /\r\ntransfer-encoding: *chunked/i.test(this.head);
        } else if (n > 16384) {
          this.error = "a response head over 16 KiB";
          return;
        }
      }
      if (!this.headDone) return;
    }
    if (!this.chunked) {
      if (i < bytes.length) this.#body(bytes.subarray(i));
      return;
    }
    while (i < bytes.length && !this.ended && this.error === undefined) {
      if (this.#skip > 0) {
        if (bytes[i++] !== (this.#skip === 2 ? CR : LF)) {
          this.error = "a chunk's data not followed by CRLF";
          return;
        }
        this.#skip--;
      } else if (this.#left === -1) {
        const byte = bytes[i++];
        if (byte === LF) {
          const size = parseInt(this.#sizeLine.trim(), 16);
          if (!Number.isSafeInteger(size)) {
            this.error = `a bad chunk size ${JSON.stringify(this.#sizeLine)}`;
            return;
          }
          this.#sizeLine = "";
          if (size === 0) this.ended = true;
          else this.#left = size;
        } else if (byte !== CR) {
          this.#sizeLine += String.fromCharCode(byte);
        }
      } else {
        const take = Math.min(this.#left, bytes.length - i);
        this.#body(bytes.subarray(i, i + take));
        i += take;
        this.#left -= take;
        if (this.#left === 0) {
          this.#left = -1;
          this.#skip = 2;
        }
      }
    }
  }

  /** The server closed the connection: a body without chunks ends here. */
  eof(): void {
    if (this.headDone && !this.chunked) this.ended = true;
  }

  /** Counts and hands on body bytes. */
  #body(bytes: Uint8Array): void {
    this.bodyBytes += bytes.length;
    this.#onBody(bytes);
  }
}

/** One block of fields, ended by a blank line. */
interface Block {
  event?: string;
  id?: string;
  data?: string;
  retry?: string;
}

/**
 * An incremental SSE parser (lines end in LF or CRLF, as the servers under
 * test send them): a blank line ends a block, `:` lines are comments,
 * `field: value` lines fill the block (one optional space after the colon).
 */
class SseParser {
  comments = 0;
  #decoder = new TextDecoder();
  #partial = "";
  #block: Block | undefined;
  #onBlock: (block: Block) => void;

  constructor(onBlock: (block: Block) => void) {
    this.#onBlock = onBlock;
  }

  /** True between the first byte of a block and its blank line. */
  get inBlock(): boolean {
    return this.#block !== undefined || this.#partial !== "";
  }

  /** Feeds body bytes as they come; blocks go to `onBlock` as they end. */
  feed(bytes: Uint8Array): void {
    const text = this.#partial + this.#decoder.decode(bytes, { stream: true });
    let start = 0;
    for (;;) {
      const end = text.indexOf("\n", start);
      if (end === -1) break;
      const line = text.charCodeAt(end - 1) === CR && end > start
        ? text.slice(start, end - 1)
        : text.slice(start, end);
      start = end + 1;
      this.#line(line);
    }
    this.#partial = start === 0 ? text : text.slice(start);
  }

  /** One line, without its line end. */
  #line(line: string): void {
    if (line === "") {
      const block = this.#block;
      this.#block = undefined;
      if (block !== undefined) this.#onBlock(block);
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) {
      this.comments++;
      return;
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    const block = this.#block ??= {};
    if (field === "data") {
      block.data = block.data === undefined ? value : `${block.data}\n${value}`;
    } else if (field === "id" || field === "event" || field === "retry") {
      block[field] = value;
    }
  }
}

/** `epoch-12` → ["epoch", 12]; `12` → ["", 12]; else undefined. */
function splitId(id: string): [string, number] | undefined {
  const match = /^(?:(.*)-)?(\d+)$/.exec(id);
  return match ? [match[1] ?? "", Number(match[2])] : undefined;
}

/**
 * Whether id `b` comes strictly after `a`: the same prefix and a greater
 * number, or, for Redis stream ids (`ms-n`), a greater pair.
 */
function isAfter(a: string, b: string): boolean {
  const x = splitId(a), y = splitId(b);
  if (x === undefined || y === undefined) return false;
  if (/^\d+$/.test(x[0]) && /^\d+$/.test(y[0]) && x[0] !== y[0]) {
    return Number(y[0]) > Number(x[0]); // stream ids: a later millisecond
  }
  return x[0] === y[0] && y[1] > x[1];
}

/** Connects, retrying a refused or reset connect a few times. */
async function connect(): Promise<{ conn: Deno.Conn; retries: number }> {
  for (let retries = 0;; retries++) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      return { conn, retries };
    } catch (error) {
      if (retries >= 5 || Date.now() > deadline) throw error;
      await delay(100 * (retries + 1));
    }
  }
}

/** Writes all of `bytes`. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    done += await conn.write(bytes.subarray(done));
  }
}

/** Keeps at most `limit` violation messages. */
function note(list: string[], what: string, limit = 5): void {
  if (list.length < limit) list.push(what);
}

/** Prints the result: the last line of stdout. */
function print(value: unknown): void {
  console.log(JSON.stringify(value));
}

// ---------------------------------------------------------------- hold

/** One connection of `hold`, checked against the seqs F..L. */
class Holder {
  conn: Deno.Conn | undefined;
  connected = false;
  /** It has seq L (then it closes). */
  finished = false;
  /** Finished, with no violation. */
  complete = false;
  events = 0;
  lastSeq: number;
  lastId: string | undefined;
  firstId: string | undefined;
  violations: string[] = [];
  reader: ResponseReader;
  parser: SseParser;
  doneAt = 0;
  firstEventAt = 0;

  constructor(readonly first: number, readonly last: number) {
    this.lastSeq = first - 1;
    this.parser = new SseParser((block) => this.#block(block));
    this.reader = new ResponseReader((bytes) => this.parser.feed(bytes));
  }

  /** Checks one block against what this connection should get next. */
  #block(block: Block): void {
    if (this.finished) return;
    if (block.event === "reset") {
      note(this.violations, `reset after seq ${this.lastSeq}: ${block.data}`);
      return;
    }
    if (block.id !== undefined) {
      if (this.lastId === undefined) this.firstId = block.id;
      else if (!isAfter(this.lastId, block.id)) {
        note(this.violations, `id ${block.id} after id ${this.lastId}`);
      }
      this.lastId = block.id;
    }
    if (block.data === undefined) {
      // The channel's first block: its position, which must be just before
      // the first event this client is to get.
      if (args["id-seq"] && block.id !== undefined && this.events === 0) {
        const number = splitId(block.id)?.[1];
        if (number !== this.first - 1) {
          note(
            this.violations,
            `first id ${block.id}, expected number ${this.first - 1}`,
          );
        }
      }
      return;
    }
    this.events++;
    let seq: number | undefined;
    try {
      seq = JSON.parse(block.data).seq;
    } catch {
      // Reported below.
    }
    if (typeof seq !== "number") {
      note(this.violations, `data without a seq: ${block.data.slice(0, 40)}`);
      return;
    }
    if (seq === this.first) this.firstEventAt = Date.now();
    if (seq !== this.lastSeq + 1) {
      note(this.violations, `seq ${seq} after ${this.lastSeq}`);
    }
    if (block.id === undefined) {
      note(this.violations, `seq ${seq} without an id`);
    } else if (args["id-seq"] && splitId(block.id)?.[1] !== seq) {
      note(this.violations, `seq ${seq} with id ${block.id}`);
    }
    this.lastSeq = seq;
    if (seq >= this.last) {
      this.finished = true;
      this.complete = this.violations.length === 0;
      this.doneAt = Date.now();
      if (this.conn) closeQuietly(this.conn);
    }
  }
}

/** `hold`: N connections that must each get seqs F..L in order. */
async function hold(): Promise<void> {
  const conns = Number(args.conns);
  const first = Number(args.first), last = Number(args.last);
  const concurrency = Number(args.concurrency);
  const bufferSize = Number(args.buffer);
  const progressStep = Number(args.progress);
  const holders = Array.from({ length: conns }, () => new Holder(first, last));
  let retries = 0;
  const errors: string[] = [];
  let printed = first - 1;
  const timer = setTimeout(() => {
    for (const h of holders) if (h.conn) closeQuietly(h.conn);
  }, Math.max(0, deadline - Date.now()));

  /** Prints progress when the least seq reached has grown enough. */
  const progress = () => {
    if (progressStep <= 0) return;
    let least = Infinity;
    for (const h of holders) least = Math.min(least, h.lastSeq);
    if (least >= printed + progressStep || (least >= last && printed < last)) {
      printed = least;
      print({ progress: least });
    }
  };

  /** Reads one connection to its end. */
  const run = async (h: Holder, headRead: () => void) => {
    let headSeen = false;
    try {
      const got = await connect();
      retries += got.retries;
      h.conn = got.conn;
      await writeAll(h.conn, REQUEST);
      const buffer = new Uint8Array(bufferSize);
      while (!h.finished && Date.now() < deadline) {
        const n = await h.conn.read(buffer);
        if (n === null) {
          h.reader.eof();
          break;
        }
        h.reader.feed(buffer.subarray(0, n));
        if (h.reader.error) {
          note(h.violations, h.reader.error);
          break;
        }
        if (!headSeen && h.reader.headDone) {
          headSeen = true;
          h.connected = h.reader.status === 200;
          if (!h.connected) note(h.violations, `status ${h.reader.status}`);
          headRead();
        }
        if (progressStep > 0) progress();
        if (h.reader.ended) break;
      }
    } catch (error) {
      if (!h.finished) note(errors, String(error), 10);
    } finally {
      if (!headSeen) headRead();
      if (h.conn) closeQuietly(h.conn);
      if (!h.finished) {
        note(
          h.violations,
          h.reader.ended
            ? `the stream ended after seq ${h.lastSeq}`
            : `incomplete at seq ${h.lastSeq} (deadline or error)`,
        );
      }
    }
  };

  // Open C connections at a time: the next one starts when one has its
  // head, so the server's accept queue never holds thousands of SYNs.
  const runs: Promise<void>[] = [];
  let next = 0;
  let connectedAt = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, conns) }, async () => {
      while (next < conns && Date.now() < deadline) {
        const h = holders[next++];
        let headRead!: () => void;
        const head = new Promise<void>((resolve) => headRead = resolve);
        runs.push(run(h, headRead));
        await head;
      }
    }),
  );
  connectedAt = Date.now();
  await Promise.all(runs);
  clearTimeout(timer);
  progress();
  const distinct = (values: (string | undefined)[]) =>
    [...new Set(values.filter((v) => v !== undefined))].slice(0, 5);
  const violating = holders.filter((h) => h.violations.length > 0);
  const result: HoldResult = {
    mode: "hold",
    conns,
    connected: holders.filter((h) => h.connected).length,
    complete: holders.filter((h) => h.complete).length,
    violating: violating.length,
    violations: violating.flatMap((h) => h.violations).slice(0, 10),
    events: holders.reduce((n, h) => n + h.events, 0),
    bytes: holders.reduce((n, h) => n + h.reader.bodyBytes, 0),
    comments: holders.reduce((n, h) => n + h.parser.comments, 0),
    firstIds: distinct(holders.map((h) => h.firstId)),
    lastIds: distinct(holders.map((h) => h.lastId)),
    connectedAt,
    firstEventAt: Math.min(...holders.map((h) => h.firstEventAt || Infinity)),
    doneAt: Math.max(0, ...holders.map((h) => h.doneAt)),
    retries,
    errors,
  };
  print(result);
}

// ---------------------------------------------------------------- churn

const POINTS = [
  "half-request",
  "after-request",
  "after-head",
  "mid-event",
  "after-events",
] as const;
type Point = typeof POINTS[number];

/** `churn`: K cycles that leave a response at every point in turn. */
async function churn(): Promise<void> {
  const cycles = Number(args.cycles);
  const lanes = Number(args.lanes);
  const timeoutMs = Number(args.timeout);
  const half = REQUEST.subarray(0, Math.floor(REQUEST.indexOf(CR) / 2));
  const left: Record<Point, number> = {
    "half-request": 0,
    "after-request": 0,
    "after-head": 0,
    "mid-event": 0,
    "after-events": 0,
  };
  const result: ChurnResult = {
    mode: "churn",
    cycles,
    done: 0,
    left,
    /** The point was not reached: the response ended first. */
    early: 0,
    /** A response that was not a 200 event stream. */
    bad: 0,
    /** Cycles that hit --timeout waiting for the server. */
    timeouts: 0,
    /** The server reset a connection it owed more to. */
    resets: 0,
    events: 0,
    errors: [],
  };
  let next = 0;

  /** One cycle: connect, go as far as `point`, close. */
  const cycle = async (i: number) => {
    const point = POINTS[i % POINTS.length];
    const wanted = 1 + Math.floor(i / POINTS.length) % 4; // after-events
    const { conn } = await connect();
    const timer = setTimeout(() => {
      result.timeouts++;
      closeQuietly(conn);
    }, timeoutMs);
    let events = 0;
    const parser = new SseParser((block) => {
      if (block.data !== undefined) events++;
    });
    const reader = new ResponseReader((bytes) => parser.feed(bytes));
    try {
      if (point === "half-request") {
        await writeAll(conn, half);
        left[point]++;
        return;
      }
      await writeAll(conn, REQUEST);
      if (point === "after-request") {
        left[point]++;
        return;
      }
      // Mid-event reads a few bytes at a time, to stop inside a block.
      const buffer = new Uint8Array(point === "mid-event" ? 7 : 4096);
      for (let read = 0; read < 1 << 20;) {
        const n = await conn.read(buffer);
        if (n === null) {
          reader.eof();
          break;
        }
        read += n;
        reader.feed(buffer.subarray(0, n));
        if (reader.headDone && (reader.status !== 200 || !reader.chunked)) {
          result.bad++;
          note(result.errors, `head: ${reader.head.split("\r\n")[0]}`, 10);
          return;
        }
        if (reader.error !== undefined) {
          result.bad++;
          note(result.errors, reader.error, 10);
          return;
        }
        const reached = point === "after-head"
          ? reader.headDone
          : point === "mid-event"
          ? reader.headDone && parser.inBlock
          : events >= wanted;
        if (reached) {
          left[point]++;
          result.events += events;
          return;
        }
        if (reader.ended) break;
      }
      result.early++;
      note(result.errors, `${point}: the response ended first`, 10);
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) result.resets++;
      else if (
        // Closed here by the timeout, which counted it.
        !(error instanceof Deno.errors.BadResource ||
          error instanceof Deno.errors.Interrupted)
      ) {
        note(result.errors, `${point}: ${error}`, 10);
      }
    } finally {
      clearTimeout(timer);
      closeQuietly(conn);
    }
  };

  await Promise.all(Array.from({ length: lanes }, async () => {
    while (next < cycles && Date.now() < deadline) {
      const i = next++;
      try {
        await cycle(i);
        result.done++;
      } catch (error) {
        note(result.errors, `connect: ${error}`, 10);
      }
    }
  }));
  print(result);
}

// ---------------------------------------------------------------- stuck

/** `stuck`: N connections that read nothing, then drain and check. */
async function stuck(): Promise<void> {
  const conns = Number(args.conns);
  const holdUntil = Date.now() + Number(args.hold);
  const opened: Deno.Conn[] = [];
  for (let i = 0; i < conns && Date.now() < deadline; i++) {
    const { conn } = await connect();
    await writeAll(conn, REQUEST);
    opened.push(conn);
  }
  print({ stuck: opened.length });
  // Stuck: read nothing until --hold passes or SIGUSR2 says so.
  let wake!: () => void;
  const woken = new Promise<void>((resolve) => wake = resolve);
  Deno.addSignalListener("SIGUSR2", wake);
  const timer = setTimeout(wake, Math.max(0, holdUntil - Date.now()));
  await woken;
  clearTimeout(timer);
  Deno.removeSignalListener("SIGUSR2", wake);

  // Drain: what each got before the server let it go must be whole events
  // in order, then the end of the response.
  const stopTimer = setTimeout(() => {
    for (const conn of opened) closeQuietly(conn);
  }, Math.max(0, deadline - Date.now()));
  const outcomes = await Promise.all(opened.map(async (conn) => {
    const violations: string[] = [];
    let lastSeq: number | undefined;
    let events = 0;
    const parser = new SseParser((block) => {
      if (block.data === undefined) return;
      events++;
      const seq = JSON.parse(block.data).seq;
      if (lastSeq !== undefined && seq !== lastSeq + 1) {
        note(violations, `seq ${seq} after ${lastSeq}`);
      }
      lastSeq = seq;
    });
    const reader = new ResponseReader((bytes) => parser.feed(bytes));
    const buffer = new Uint8Array(65536);
    try {
      while (!reader.ended) {
        const n = await conn.read(buffer);
        if (n === null) {
          reader.eof();
          break;
        }
        reader.feed(buffer.subarray(0, n));
      }
    } catch (error) {
      note(violations, `read: ${error}`);
    } finally {
      closeQuietly(conn);
    }
    if (!reader.ended) note(violations, "the response did not end");
    if (parser.inBlock) note(violations, "it ended inside an event");
    return { ended: reader.ended, bytes: reader.bodyBytes, events, violations };
  }));
  clearTimeout(stopTimer);
  const bytes = outcomes.map((o) => o.bytes);
  const result: StuckResult = {
    mode: "stuck",
    conns: opened.length,
    ended: outcomes.filter((o) => o.ended).length,
    violating: outcomes.filter((o) => o.violations.length > 0).length,
    violations: outcomes.flatMap((o) => o.violations).slice(0, 10),
    events: outcomes.reduce((n, o) => n + o.events, 0),
    minBytes: Math.min(...bytes),
    maxBytes: Math.max(...bytes),
  };
  print(result);
}

/** Runs the mode the command line names. */
async function main(): Promise<void> {
  const parsed = parse(Deno.args);
  args = parsed.values;
  const mode = parsed.positionals[0];
  port = Number(args.port);
  deadline = Date.now() + Number(args.deadline);
  REQUEST = ENCODER.encode(
    `GET ${args.path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
      `Accept: text/event-stream\r\n\r\n`,
  );
  if (!Number.isSafeInteger(port) || port <= 0) {
    console.error("--port is required");
    Deno.exit(2);
  }
  if (mode === "hold") await hold();
  else if (mode === "churn") await churn();
  else if (mode === "stuck") await stuck();
  else {
    console.error(`Unknown mode ${JSON.stringify(mode)}: hold, churn or stuck`);
    Deno.exit(2);
  }
}

if (import.meta.main) await main();
