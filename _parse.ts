// Internal to ssekit: the event-stream parser that SseParseStream,
// parseEvents and SseClient share, exactly as the WHATWG "event stream
// interpretation" says. client.ts exports its types, and none of the rest.
//
// It works on each decoded chunk in place: it finds line ends with
// indexOf, reads field names a code unit at a time (from the chunk's bytes,
// when they are all ASCII), and slices out only the values it keeps. No
// string is built a character at a time.

import { checkInteger } from "./_validate.ts";

/**
 * One event as the client dispatches it: the names and values of the
 * browser's `MessageEvent` for a server-sent event.
 *
 * @example
 * ```ts
 * import { parseEvents, type SseMessage } from "./client.ts";
 *
 * const [message]: SseMessage[] = parseEvents("id: 7\ndata: hi\n\n");
 * message; // { type: "message", data: "hi", lastEventId: "7" }
 * ```
 */
export interface SseMessage {
  /** The `event` field, or `"message"` when there was none. */
  type: string;
  /** The `data` lines, joined with LF. */
  data: string;
  /**
   * The last `id` the stream set, in this event or an earlier one: what a
   * client sends back as `Last-Event-ID` when it reconnects.
   */
  lastEventId: string;
}

/** Options for {@linkcode SseParseStream} and {@linkcode parseEvents}. */
export interface SseParseOptions {
  /**
   * The longest line, and the most data one event may gather, in UTF-16
   * code units (bytes, for ASCII). Beyond it the parser throws a
   * `RangeError`, so that a server cannot make it hold text without bound.
   *
   * @default {1048576}
   */
  maxEventSize?: number;
}

/** What the core calls with each message it dispatches; it must not throw. */
export type Dispatch = (message: SseMessage) => void;

const LF = 10;
const CR = 13;
const SPACE = 32;
const COLON = 58;
const BOM = 0xfeff;
const DIGITS = /^[0-9]+$/;
export const DEFAULT_MAX_EVENT_SIZE = 1_048_576;

/** Checks `maxEventSize` for the named constructor and returns it. */
export function checkMaxEventSize(action: string, value: unknown): number {
  return value === undefined
    ? DEFAULT_MAX_EVENT_SIZE
    : checkInteger(action, "maxEventSize", value, { min: 1 });
}

/**
 * Where the bytes of `chunk` stop forming whole UTF-8 sequences: its
 * length, or the start of a sequence cut off at its end.
 */
function wholeLength(chunk: Uint8Array): number {
  const length = chunk.length;
  for (let i = length - 1; i >= 0 && i >= length - 3; i--) {
    const byte = chunk[i];
    if (byte < 0x80) return length;
    if (byte >= 0xc0) {
      const needs = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
      return length - i < needs ? i : length;
    }
  }
  return length;
}

/** Where the line that goes on at `from` ends; -1 if not in `text`. */
function lineEnd(text: string, from: number, cr: number): number {
  const lf = text.indexOf("\n", from);
  return cr !== -1 && (lf === -1 || cr < lf) ? cr : lf;
}

function isLineEnd(code: number): boolean {
  return code === LF || code === CR;
}

/**
 * The UTF-16 code unit at `i` of `text`, read from `ascii` when the chunk
 * was all ASCII: its bytes are then its code units, at the same indexes, and
 * reading a byte is cheaper than `charCodeAt` (the loop reads several a
 * line). `i` must be inside the chunk: after one read past its end, V8
 * recompiles every read in the loop to allow for it, and in 16 KiB chunks
 * the parser got markedly slower (bench/parse.ts).
 */
function code(text: string, ascii: Uint8Array | undefined, i: number): number {
  return ascii === undefined ? text.charCodeAt(i) : ascii[i];
}

/** Whether `text` holds `part` at `from`, compared in place. */
function matches(
  text: string,
  ascii: Uint8Array | undefined,
  from: number,
  part: string,
): boolean {
  for (let i = 0; i < part.length; i++) {
    if (code(text, ascii, from + i) !== part.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * One stream's parser: `feed` it the stream's chunks, bytes or text, in
 * order; it calls `dispatch` with each event as its blank line arrives.
 * `lastEventId` and `retry` follow the stream as it is parsed, also for
 * blocks that dispatch nothing.
 */
export class EventStreamParser {
  /** The id as of the last blank line: what a reconnect sends. */
  lastEventId: string;
  /** The last valid `retry` field, in milliseconds. */
  retry: number | undefined;
  #dispatch: Dispatch;
  #max: number;
  // Not streaming: a chunk is cut before an unfinished UTF-8 sequence,
  // which waits in #carry for the next. Deno's streaming decode costs more
  // per call, most for small chunks.
  #decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  #carry: Uint8Array | undefined;
  /** Whether the stream may still begin with a BOM (nothing came yet). */
  #start = true;
  /** The previous chunk ended in CR: an LF that opens this one is its pair. */
  #afterCR = false;
  /** The start of a line that the next chunks complete, in pieces. */
  #pending: string[] = [];
  #pendingLength = 0;
  #data = "";
  #hasData = false;
  #type = "";
  /** The last event type read, kept so that the next can reuse it. */
  #knownType = "";
  #id: string;

  constructor(dispatch: Dispatch, max: number, lastEventId = "") {
    this.#dispatch = dispatch;
    this.#max = max;
    this.#id = this.lastEventId = lastEventId;
  }

  /** Parses the next chunk; throws a `RangeError` past `maxEventSize`. */
  feed(chunk: Uint8Array | string): void {
    let text: string;
    let ascii: Uint8Array | undefined;
    if (typeof chunk === "string") {
      text = this.#carry === undefined ? chunk : this.#flushCarry() + chunk;
    } else {
      if (this.#carry !== undefined) {
        const joined = new Uint8Array(this.#carry.length + chunk.length);
        joined.set(this.#carry);
        joined.set(chunk, this.#carry.length);
        chunk = joined;
        this.#carry = undefined;
      }
      const whole = wholeLength(chunk);
      if (whole < chunk.length) this.#carry = chunk.slice(whole);
      const bytes = whole < chunk.length ? chunk.subarray(0, whole) : chunk;
      text = this.#decoder.decode(bytes);
      // As many characters as bytes: every byte was one ASCII character.
      if (text.length === bytes.length) ascii = bytes;
    }
    if (this.#start && text !== "") {
      this.#start = false;
      if (text.charCodeAt(0) === BOM) text = text.slice(1);
    }
    if (text !== "") this.#parse(text, ascii);
  }

  /**
   * The stream has ended: what is left is an event without its blank line,
   * which is not dispatched.
   */
  end(): void {
    this.#carry = undefined;
    this.#pending = [];
    this.#pendingLength = 0;
    this.#data = "";
    this.#hasData = false;
    this.#type = "";
  }

  #flushCarry(): string {
    const text = this.#decoder.decode(this.#carry);
    this.#carry = undefined;
    return text;
  }

  #parse(text: string, ascii: Uint8Array | undefined): void {
    let pos = 0;
    if (this.#afterCR) {
      this.#afterCR = false;
      if (code(text, ascii, 0) === LF) pos = 1;
    }
    const length = text.length;
    const max = this.#max;
    // The next CR and the next NUL, or -1: most streams have neither, and
    // one search a chunk then rules them out.
    let cr = text.indexOf("\r", pos);
    let nul = -2;
    if (this.#pendingLength > 0) {
      const end = lineEnd(text, pos, cr);
      if (end === -1) return this.#hold(text, pos);
      if (this.#pendingLength + end - pos > max) this.#tooLong("a line");
      this.#pending.push(text.slice(pos, end));
      const line = this.#pending.join("");
      this.#pending = [];
      this.#pendingLength = 0;
      this.#line(line, 0, line.length);
      pos = this.#next(text, end, cr);
    }
    while (pos < length) {
      if (cr !== -1 && cr < pos) cr = text.indexOf("\r", pos);
      const first = code(text, ascii, pos);
      // The checks for `data:`, `event:` and `id:` read as far as a line's
      // seventh code unit: a line that starts nearer the end of the chunk
      // takes the general path, which reads only inside the line.
      const room = pos + 7 <= length;
      let end: number;
      if (
        room && first === 100 && code(text, ascii, pos + 4) === COLON &&
        code(text, ascii, pos + 1) === 97 &&
        code(text, ascii, pos + 2) === 116 &&
        code(text, ascii, pos + 3) === 97
      ) {
        // `data:`, the most common line. A single one that ends in LF and is
        // followed by a blank LF line is dispatched at once, without a data
        // buffer.
        const from = code(text, ascii, pos + 5) === SPACE ? pos + 6 : pos + 5;
        end = lineEnd(text, from, cr);
        if (end === -1) break;
        if (end - pos > max) this.#tooLong("a line");
        const value = text.slice(from, end);
        if (
          !this.#hasData && end !== cr && end + 1 < length &&
          code(text, ascii, end + 1) === LF
        ) {
          this.#send(value);
          pos = end + 2;
          continue;
        }
        this.#addData(value);
      } else if (first === LF || first === CR) {
        end = pos;
        this.#blank();
      } else if (
        room && first === 101 && code(text, ascii, pos + 5) === COLON &&
        code(text, ascii, pos + 1) === 118 &&
        code(text, ascii, pos + 2) === 101 &&
        code(text, ascii, pos + 3) === 110 && code(text, ascii, pos + 4) === 116
      ) {
        // `event:`: most streams use a few types, so the one before is
        // compared in place before a new string is made.
        const from = code(text, ascii, pos + 6) === SPACE ? pos + 7 : pos + 6;
        const known = this.#knownType;
        end = from + known.length;
        if (
          end >= length || !isLineEnd(code(text, ascii, end)) ||
          !matches(text, ascii, from, known)
        ) {
          end = lineEnd(text, from, cr);
          if (end === -1) break;
          if (end - pos > max) this.#tooLong("a line");
          this.#knownType = text.slice(from, end);
        }
        this.#type = this.#knownType;
      } else if (
        room && first === 105 && code(text, ascii, pos + 1) === 100 &&
        code(text, ascii, pos + 2) === COLON
      ) {
        const from = code(text, ascii, pos + 3) === SPACE ? pos + 4 : pos + 3;
        end = lineEnd(text, from, cr);
        if (end === -1) break;
        if (end - pos > max) this.#tooLong("a line");
        if (nul !== -1 && nul < from) nul = text.indexOf("\0", from);
        if (nul === -1 || nul > end) this.#id = text.slice(from, end);
      } else {
        end = lineEnd(text, pos, cr);
        if (end === -1) break;
        if (end - pos > max) this.#tooLong("a line");
        this.#line(text, pos, end);
      }
      pos = this.#next(text, end, cr);
    }
    if (pos < length) this.#hold(text, pos);
  }

  /**
   * Where the line after the one ending at `end` starts. `cr` is the first
   * CR from that line's start, so the line ends in CR if it is at `end`.
   */
  #next(text: string, end: number, cr: number): number {
    if (end !== cr) return end + 1;
    if (end + 1 === text.length) {
      this.#afterCR = true;
      return end + 1;
    }
    return text.charCodeAt(end + 1) === LF ? end + 2 : end + 1;
  }

  /** Keeps the start of a line that the next chunk continues. */
  #hold(text: string, pos: number): void {
    this.#pendingLength += text.length - pos;
    if (this.#pendingLength > this.#max) this.#tooLong("a line");
    this.#pending.push(pos === 0 ? text : text.slice(pos));
  }

  /** One line that is not blank: a comment or a field. */
  #line(text: string, start: number, end: number): void {
    if (start === end) return this.#blank();
    if (text.charCodeAt(start) === COLON) return; // a comment
    // The names the spec knows have at most five characters: a line with no
    // colon in its first six is an unknown field, however long it goes on.
    let colon = -1;
    for (let i = start; i < end && i <= start + 5; i++) {
      if (text.charCodeAt(i) === COLON) {
        colon = i;
        break;
      }
    }
    let name: string;
    let value = "";
    if (colon === -1) {
      if (end - start > 5) return;
      name = text.slice(start, end);
    } else {
      name = text.slice(start, colon);
      const from = colon + 1 < end && text.charCodeAt(colon + 1) === SPACE
        ? colon + 2
        : colon + 1;
      if (from < end) value = text.slice(from, end);
    }
    switch (name) {
      case "event":
        this.#type = value;
        break;
      case "data":
        this.#addData(value);
        break;
      case "id":
        if (!value.includes("\0")) this.#id = value;
        break;
      case "retry":
        if (DIGITS.test(value)) this.retry = Number(value);
        break;
    }
  }

  #addData(value: string): void {
    if (this.#hasData) {
      if (this.#data.length + value.length >= this.#max) {
        this.#tooLong("an event's data");
      }
      this.#data += "\n" + value;
    } else {
      this.#data = value;
      this.#hasData = true;
    }
  }

  /** A blank line: dispatch the event, if it has data. */
  #blank(): void {
    if (this.#hasData) {
      const data = this.#data;
      this.#data = "";
      this.#hasData = false;
      this.#send(data);
    } else {
      this.lastEventId = this.#id;
      this.#type = "";
    }
  }

  #send(data: string): void {
    const id = this.#id;
    this.lastEventId = id;
    const type = this.#type;
    this.#type = "";
    this.#dispatch({
      type: type === "" ? "message" : type,
      data,
      lastEventId: id,
    });
  }

  #tooLong(what: string): never {
    this.end();
    throw new RangeError(
      `Cannot parse event stream: ${what} is longer than \`maxEventSize\` (${this.#max} UTF-16 code units)`,
    );
  }
}
