/**
 * The other end of an event stream: {@linkcode SseParseStream}, a parser
 * exactly as the WHATWG "event stream interpretation" says, and
 * {@linkcode parseEvents} for a string. Web standards only: it runs in
 * browsers, Deno, Node 20+, Bun and workers.
 *
 * @example Read a fetched event stream
 * ```ts
 * import { SseParseStream } from "./client.ts";
 *
 * const response = new Response("id: 1\ndata: hello\n\n");
 * for await (const message of response.body!.pipeThrough(new SseParseStream())) {
 *   message; // { type: "message", data: "hello", lastEventId: "1" }
 * }
 * ```
 *
 * @module
 */

export {
  parseEvents,
  type SseMessage,
  type SseParseOptions,
  SseParseStream,
} from "./_parse.ts";
