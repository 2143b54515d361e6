// Internal to ssekit: what an SseClient makes of a response before it reads
// it as an event stream. client.ts exports SseResponseError.

import { describe } from "./_validate.ts";

/**
 * Why an {@linkcode SseClient} stopped for good on a response: a status
 * other than 2xx, or a content type other than `text/event-stream`. Both
 * mean the URL does not serve an event stream, so trying again would not
 * help.
 *
 * @example Tell the user why the stream stopped
 * ```ts
 * import { SseClient, SseResponseError } from "./client.ts";
 *
 * const client = new SseClient("http://localhost/chat", {
 *   fetch: () => Promise.resolve(new Response("no key", { status: 401 })),
 * });
 * try {
 *   for await (const _ of client);
 * } catch (error) {
 *   if (!(error instanceof SseResponseError)) throw error;
 *   error.status; // 401
 *   error.body; // "no key"
 * }
 * ```
 */
export class SseResponseError extends Error {
  /** The response's status. */
  readonly status: number;
  /** The response's headers (`retry-after`, say). */
  readonly headers: Headers;
  /**
   * The start of the body of a response that was not 2xx, as text (up to
   * 16 KiB): where APIs say what was wrong. Empty for a wrong content type.
   */
  readonly body: string;

  /** Creates the error; `SseClient` makes these. */
  constructor(message: string, response: Response, body = "") {
    super(message);
    this.name = "SseResponseError";
    this.status = response.status;
    this.headers = response.headers;
    this.body = body;
  }
}

const EVENT_STREAM = /^text\/event-stream\s*(;|$)/i;
const ERROR_BODY_BYTES = 16_384;

/**
 * Whether `response` is an event stream to read (`"open"`), a 204 (the
 * spec's way to say "do not reconnect": `"stop"`), or neither: the error
 * that stops the client. The body of a response it refuses is cancelled.
 */
export async function judge(
  response: Response,
): Promise<"open" | "stop" | SseResponseError> {
  if (response.status === 204) {
    response.body?.cancel().catch(() => {});
    return "stop";
  }
  if (!response.ok) {
    const text = response.statusText ? ` ${response.statusText}` : "";
    return new SseResponseError(
      `Cannot read event stream: the server answered ${response.status}${text}`,
      response,
      await bodyStart(response),
    );
  }
  const type = response.headers.get("content-type");
  if (type !== null && EVENT_STREAM.test(type)) return "open";
  response.body?.cancel().catch(() => {});
  return new SseResponseError(
    `Cannot read event stream: the server answered with content-type ${
      type === null ? "none" : describe(type)
    }, not "text/event-stream"`,
    response,
  );
}

/** The start of a body, as text; the rest is cancelled. */
async function bodyStart(response: Response): Promise<string> {
  if (response.body === null) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    while (length < ERROR_BODY_BYTES) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      length += value.length;
    }
  } catch {
    // What came before the body broke off is still worth showing.
  } finally {
    reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return new TextDecoder().decode(bytes.subarray(0, ERROR_BODY_BYTES));
}
