// A client process for the fault scenario: N clients that each read an
// event stream as EventSource does (keeping the last event id, honouring
// nothing else) and reconnect with `Last-Event-ID` whenever the stream ends
// or fails, until they are done or a deadline passes. Then it prints one
// JSON line: what every client saw, checked against the resume contract.
//
//   deno run -A soak/_resume_client.ts '{"url": …, "clients": N, …}'
//
// kind "ticks" (the demo's /sse): each client must get the ticks 1..count,
// each once and in order, across every reconnect, and then `complete`.
// kind "channel" (soak/channel_server.ts): the client records the ids it
// got, in runs that a reset (or its first connection) starts, and is done
// when it gets an event with data {"final": true}; the scenario checks that
// each run is a stretch of the channel's order, with no gap or duplicate.
import { createParser } from "eventsource-parser";

interface Job {
  url: string;
  clients: number;
  kind: "ticks" | "channel";
  /** Give up after this many milliseconds. */
  deadlineMs: number;
  /** Wait between a lost stream and the next try, in milliseconds. */
  retryMs: number;
}

/** What one client saw, and what broke the contract. */
interface Seen {
  connects: number;
  events: number;
  resets: number;
  /** Reconnects that resumed with a Last-Event-ID. */
  resumes: number;
  done: boolean;
  violations: string[];
  /** kind "channel": the ids received, in runs that resets start. */
  runs: string[][];
}

const job: Job = JSON.parse(Deno.args[0]);
const deadline = Date.now() + job.deadlineMs;

async function client(): Promise<Seen> {
  const seen: Seen = {
    connects: 0,
    events: 0,
    resets: 0,
    resumes: 0,
    done: false,
    violations: [],
    runs: [[]],
  };
  let lastId: string | undefined;
  /** ticks: the last tick. */
  let last = 0;
  const violate = (what: string) => {
    if (seen.violations.length < 5) seen.violations.push(what);
  };
  while (!seen.done && Date.now() < deadline) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), deadline - Date.now());
    try {
      const headers: Record<string, string> = lastId === undefined
        ? {}
        : { "last-event-id": lastId };
      if (lastId !== undefined) seen.resumes++;
      seen.connects++;
      const response = await fetch(job.url, {
        headers,
        signal: controller.signal,
      });
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new Error(`status ${response.status}`);
      }
      const parser = createParser({
        onEvent(event) {
          if (seen.done) return; // what follows the end in the same chunk
          seen.events++;
          if (event.event === "reset") {
            seen.resets++;
            seen.runs.push([]);
            return;
          }
          if (job.kind === "ticks") {
            if (event.event === "tick") {
              const { i } = JSON.parse(event.data);
              if (i !== last + 1) violate(`tick ${i} after ${last}`);
              last = i;
            } else if (event.event === "complete") {
              seen.done = true;
            }
            return;
          }
          if (JSON.parse(event.data).final) {
            seen.done = true;
            return;
          }
          seen.runs.at(-1)!.push(event.id!);
        },
      });
      // The id that a reconnect sends is the last id field of a block that
      // ended (with a blank line), with or without data, as EventSource
      // keeps it; eventsource-parser reports ids only with data.
      let tail = "";
      let pending: string | undefined;
      const reader = response.body!.pipeThrough(new TextDecoderStream())
        .getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const lines = (tail + value).split("\n");
        tail = lines.pop()!;
        for (const line of lines) {
          if (line.startsWith("id:")) {
            const value = line.slice(3);
            pending = value.startsWith(" ") ? value.slice(1) : value;
          } else if (line === "" && pending !== undefined) {
            lastId = pending;
            pending = undefined;
          }
        }
        parser.feed(value);
        // Ended here, not by aborting the fetch: an abort does not stop a
        // body that is read through pipeThrough() while data keeps coming.
        if (seen.done || Date.now() > deadline) {
          await reader.cancel();
          break;
        }
      }
    } catch {
      // A dropped or refused connection: try again, as EventSource does.
    } finally {
      clearTimeout(timer);
    }
    if (!seen.done) await new Promise((r) => setTimeout(r, job.retryMs));
  }
  if (!seen.done) violate("not done by the deadline");
  return seen;
}

const results = await Promise.all(
  Array.from({ length: job.clients }, () => client()),
);
const sum = (key: "connects" | "events" | "resets" | "resumes") =>
  results.reduce((n, seen) => n + seen[key], 0);
console.log(JSON.stringify({
  clients: results.length,
  done: results.filter((seen) => seen.done).length,
  connects: sum("connects"),
  events: sum("events"),
  resets: sum("resets"),
  resumes: sum("resumes"),
  withResets: results.filter((seen) => seen.resets > 0).length,
  withResumes: results.filter((seen) => seen.resumes > 0).length,
  violations: results.flatMap((seen) => seen.violations).slice(0, 20),
  violating: results.filter((seen) => seen.violations.length > 0).length,
  runs: job.kind === "channel" ? results.map((seen) => seen.runs) : [],
}));
