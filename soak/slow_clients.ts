// Slow clients: clients that never read, next to fast ones, while the
// channel sends tens of MB. The stuck ones must be dropped (and only they),
// the server's memory must stay within what `maxBufferedAmount` allows them,
// and the fast clients must not be slowed much, compared with the same fast
// clients alone in the same run. Last, one SseWriter whose client reads
// nothing must hold its producer near `highWaterMark`.
import { ChannelServer } from "./channel_server.ts";
import { Client, type HoldResult, type StuckResult } from "./_client.ts";
import {
  atLeast,
  atMost,
  delay,
  equals,
  format,
  type Scenario,
} from "./_util.ts";
import { SseClosedError, SseWriter } from "../sse.ts";
import { median } from "../bench/_stats.ts";

const KIB = 1024, MIB = 1024 * 1024;
const HISTORY_BYTES = 256 * KIB;
const MAX_BUFFERED = 1 * MIB;
const STUCK = 20;
const FAST = 20;
/** The data of each event, in bytes. */
const EVENT_BYTES = 10 * KIB;
/**
 * The sender keeps at most this many events ahead of the slowest fast
 * client, as its progress lines say: 50 × 10 KiB is half of maxBuffered, so
 * a fast client's queue can never reach the limit, however the machine
 * schedules it, and a dropped fast client would be the channel's fault.
 */
const WINDOW = 50;
/** Events per POST /send. */
const BATCH = 10;
/**
 * What RSS may grow by beyond the stuck clients' queues (STUCK ×
 * maxBuffered) and the history: the most that the same fast clients' runs
 * alone grew by (measured in this run) plus this much. Why this much: in
 * first runs, the heap after gc stayed at 5.5 MiB throughout, but once in a
 * few runs V8 resized its heap (heapTotal from ~35 to ~60 MiB, external from
 * ~5 to ~10 MiB, in runs with or without stuck clients), a one-time RSS step
 * of up to 35 MiB, after which RSS stayed flat. The margin covers that one
 * step (~26 + 5 MiB); the queues themselves cost far less than their 20 MiB
 * allowance, since a stuck client's queue is a rope of the strings that every
 * other client is sent too.
 */
const RSS_MARGIN = 32 * MIB;

/** One run of the fast clients (and maybe stuck ones) and what it measured. */
interface Run {
  fast: HoldResult;
  /** From the first POST /send to the last event at the last fast client. */
  ms: number;
  paced: boolean;
  rssStart: number;
  rssPeak: number;
  /** The server's heap after gc() at the start. */
  heapStart: number;
  /** The most of heapTotal and external seen in samples (no gc), bytes. */
  heapTotalPeak: number;
  externalPeak: number;
  droppedDuring: number;
}

/** Starts a `hold` process of FAST clients for seqs first..last. */
function fastClients(port: number, first: number, last: number, ms: number) {
  return new Client<HoldResult>("hold", port, [
    "--conns",
    String(FAST),
    "--first",
    String(first),
    "--last",
    String(last),
    "--id-seq",
    "--deadline",
    String(ms),
    "--buffer",
    "65536",
    "--progress",
    String(BATCH),
  ]);
}

/**
 * Sends `total` events, never more than WINDOW ahead of the slowest fast
 * client. False if `deadline` passed first.
 */
async function pacedSend(
  server: ChannelServer,
  fast: Client<HoldResult>,
  first: number,
  total: number,
  deadline: number,
): Promise<boolean> {
  let sent = 0;
  while (sent < total) {
    if (Date.now() > deadline) return false;
    const reached = fast.progress(first - 1) - (first - 1);
    const room = Math.min(WINDOW - (sent - reached), total - sent);
    if (room >= Math.min(BATCH, total - sent)) {
      const n = Math.min(BATCH, room);
      await server.send(n, EVENT_BYTES);
      sent += n;
    } else {
      await delay(1);
    }
  }
  return true;
}

/** One run: FAST clients (after `stuck`, if any) get `total` events. */
async function run(
  server: ChannelServer,
  total: number,
  expectSize: number,
  deadlineMs: number,
): Promise<Run> {
  const deadline = Date.now() + deadlineMs;
  const start = await server.stats();
  const first = start.sent + 1;
  const fast = fastClients(server.port, first, start.sent + total, deadlineMs);
  await server.until((s) => s.size >= expectSize + FAST, 10_000, 50);
  // gc() twice, so the RSS start is settled
  const heapStart = (await server.stats()).heapUsed;
  const rssStart = server.rss();
  let rssPeak = rssStart;
  let heapTotalPeak = 0, externalPeak = 0;
  let sampling = false;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, server.rss());
    if (sampling) return;
    sampling = true;
    server.memory().then((m) => {
      heapTotalPeak = Math.max(heapTotalPeak, m.heapTotal);
      externalPeak = Math.max(externalPeak, m.external);
    }, () => {}).finally(() => sampling = false);
  }, 20);
  const sending = Date.now();
  try {
    const paced = await pacedSend(server, fast, first, total, deadline);
    const result = await fast.result();
    const end = await server.stats();
    return {
      fast: result,
      ms: result.doneAt - sending,
      paced,
      rssStart,
      rssPeak,
      heapStart,
      heapTotalPeak,
      externalPeak,
      droppedDuring: end.dropped - start.dropped,
    };
  } finally {
    clearInterval(sampler);
    await fast.proc.stop();
  }
}

/**
 * In process: one SseWriter, a producer that awaits write(), and a raw
 * socket that never reads. What the writer holds once the producer stalls.
 */
async function stuckWriter(): Promise<{
  held: number;
  written: number;
  highWaterMark: number;
  eventBytes: number;
  rejected: boolean;
}> {
  const highWaterMark = 64 * KIB;
  const event = { data: "x".repeat(1000) };
  const eventBytes = 1008; // "data: " + 1000 + "\n\n"
  let written = 0;
  let producer: Promise<void> | undefined;
  let writer: SseWriter | undefined;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const w = writer = new SseWriter({
        signal: request.signal,
        highWaterMark,
      });
      producer = (async () => {
        // A budget of 1 GiB: without backpressure this fills memory.
        for (let i = 0; i < 1024 * 1024; i++) {
          await w.write(event);
          written += eventBytes;
        }
      })();
      return w.response;
    },
  );
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`,
      ),
    );
    // Until the producer makes no progress for 200 ms (at most 10 s).
    let last = -1;
    for (let i = 0; i < 200 && written !== last; i++) {
      last = written;
      await delay(50);
      if (written === last) await delay(150);
    }
    const held = writer?.bufferedAmount ?? NaN;
    conn.close();
    let rejected = false;
    await producer?.catch((error) =>
      rejected = error instanceof SseClosedError
    );
    return { held, written, highWaterMark, eventBytes, rejected };
  } finally {
    try {
      conn.close();
    } catch {
      // Closed above.
    }
    await server.shutdown();
  }
}

/** A run with STUCK clients that never read next to the fast ones. */
async function runWithStuck(
  server: ChannelServer,
  total: number,
  deadlineMs: number,
): Promise<{ run: Run; stuck: StuckResult }> {
  const stuckClients = new Client<StuckResult>("stuck", server.port, [
    "--conns",
    String(STUCK),
    "--hold",
    String(deadlineMs * 2),
    "--deadline",
    String(deadlineMs * 3),
  ]);
  try {
    await server.until((s) => s.size >= STUCK, 10_000, 50);
    const result = await run(server, total, STUCK, deadlineMs);
    // They are dropped once their queues pass maxBuffered, which the first
    // few MB do (behind the kernel's buffers); then they read what came.
    await server.until((s) => s.size === 0, 5000, 50);
    stuckClients.proc.kill("SIGUSR2");
    return { run: result, stuck: await stuckClients.result() };
  } finally {
    await stuckClients.proc.stop();
  }
}

const slowClients: Scenario = async ({ short, log }) => {
  const started = performance.now();
  const total = short ? 1000 : 4000;
  const rounds = 3;
  const deadlineMs = short ? 20_000 : 90_000;
  const server = await ChannelServer.start([
    "--history-bytes",
    String(HISTORY_BYTES),
    "--max-buffered",
    String(MAX_BUFFERED),
  ]);
  const alone: Run[] = [];
  const withStuck: Run[] = [];
  const stuck: StuckResult[] = [];
  let final;
  let exit;
  try {
    // Warm-up, as large as a run: the heap and the allocator reach their
    // working size here, not in the first measured run.
    log("warm-up: the fast clients alone");
    await run(server, total, 0, deadlineMs);
    // Alternating, so that drift (JIT, heap growth) favours neither.
    for (let round = 1; round <= rounds; round++) {
      log(`round ${round}: fast clients alone, then with ${STUCK} stuck`);
      alone.push(await run(server, total, 0, deadlineMs));
      const next = await runWithStuck(server, total, deadlineMs);
      withStuck.push(next.run);
      stuck.push(next.stuck);
    }
    final = (await server.until(
      (s) => s.size === 0 && s.opened === s.closed,
      5000,
      50,
    )).stats;
    exit = await server.exit();
  } finally {
    await server.proc.stop();
  }
  log("one SseWriter, one client that reads nothing");
  const writer = await stuckWriter();

  const growth = (r: Run) => r.rssPeak - r.rssStart;
  const aloneGrowth = Math.max(...alone.map(growth));
  const stuckGrowth = Math.max(...withStuck.map(growth));
  const rssBound = STUCK * MAX_BUFFERED + HISTORY_BYTES + aloneGrowth +
    RSS_MARGIN;
  const ratio = median(withStuck.map((r) => r.ms)) /
    median(alone.map((r) => r.ms));
  const mb = (bytes: number) => `${format(bytes / MIB)} MiB`;
  const list = (runs: Run[], show: (r: Run) => string) =>
    runs.map(show).join(", ");
  const fastRuns = [...alone, ...withStuck];
  const stuckBytes = stuck.flatMap((r) => [r.minBytes, r.maxBytes]);
  return {
    scenario: "slow-clients",
    summary:
      `${STUCK} stuck + ${FAST} fast clients, ${format(total)} events × ${
        EVENT_BYTES / KIB
      } KiB (${
        format(total * EVENT_BYTES / 1e6)
      } MB) per run, ${rounds} runs ` +
      `alone and ${rounds} with stuck clients; maxBuffered ${
        mb(MAX_BUFFERED)
      }, historyBytes ${format(HISTORY_BYTES / KIB)} KiB`,
    seconds: (performance.now() - started) / 1000,
    figures: {
      "fast clients' time, alone": `${list(alone, (r) => format(r.ms))} ms`,
      "fast clients' time, with stuck clients": `${
        list(withStuck, (r) => format(r.ms))
      } ms`,
      "bytes each fast client received per run": mb(
        alone[0].fast.bytes / FAST,
      ),
      "server RSS growth, alone": list(alone, (r) => mb(growth(r))),
      "server RSS growth, with stuck clients": list(
        withStuck,
        (r) => mb(growth(r)),
      ),
      "server heapTotal / external peaks (no gc), with stuck clients": list(
        withStuck,
        (r) => `${mb(r.heapTotalPeak)} / ${mb(r.externalPeak)}`,
      ),
      "server heapTotal / external peaks (no gc), alone": list(
        alone,
        (r) => `${mb(r.heapTotalPeak)} / ${mb(r.externalPeak)}`,
      ),
      "server RSS / heap at the start of each stuck run": list(
        withStuck,
        (r) => `${mb(r.rssStart)} / ${mb(r.heapStart)}`,
      ),
      "bytes each stuck client got before its drop (kernel buffers)": `${
        mb(Math.min(...stuckBytes))
      } – ${mb(Math.max(...stuckBytes))}`,
      "SseWriter: held / written before the producer stalled": `${
        format(writer.held / KIB)
      } KiB / ${format(writer.written / KIB)} KiB (highWaterMark ${
        writer.highWaterMark / KIB
      } KiB)`,
      "first violations": [
        ...fastRuns.flatMap((r) => r.fast.violations),
        ...stuck.flatMap((r) => r.violations),
      ].join("; ") || "none",
    },
    checks: [
      equals(
        "stuck clients dropped, per run",
        withStuck.map((r) => r.droppedDuring).join(", "),
        withStuck.map(() => STUCK).join(", "),
      ),
      equals(
        "drops while the fast clients ran alone",
        alone.reduce((n, r) => n + r.droppedDuring, 0),
        0,
      ),
      equals(
        "fast clients that got every event in order, over all runs",
        fastRuns.reduce((n, r) => n + r.fast.complete, 0),
        fastRuns.length * FAST,
      ),
      equals(
        "the sender kept its pace (no run hit its deadline)",
        fastRuns.every((r) => r.paced),
        true,
      ),
      equals(
        "stuck clients whose response then ended cleanly",
        stuck.reduce((n, r) => n + r.ended - r.violating, 0),
        rounds * STUCK,
      ),
      atMost(
        `server RSS growth with stuck clients (most of ${rounds}), ≤ ${STUCK} × maxBuffered + history + growth alone + ${
          RSS_MARGIN / MIB
        } MiB`,
        stuckGrowth / MIB,
        rssBound / MIB,
        " MiB",
      ),
      atMost(
        "fast clients' median time, with stuck clients / alone",
        ratio,
        2,
      ),
      equals(
        "size after all left; opened − closed",
        `${final.size}; ${final.opened - final.closed}`,
        "0; 0",
      ),
      equals(
        "server exit code after /exit, by itself",
        exit.code ?? "still running",
        0,
      ),
      equals("server lines saying error", server.problems().length, 0),
      atMost(
        "SseWriter: bufferedAmount once the producer stalls, ≤ highWaterMark + one event",
        writer.held,
        writer.highWaterMark + writer.eventBytes,
        " B",
      ),
      atLeast(
        "SseWriter: bufferedAmount, > highWaterMark (it did hold)",
        writer.held,
        writer.highWaterMark + 1,
        " B",
      ),
      atMost(
        "SseWriter: written before the producer stalled",
        writer.written / MIB,
        32,
        " MiB",
      ),
      equals(
        "SseWriter: the producer's write rejected with SseClosedError",
        writer.rejected,
        true,
      ),
    ],
  };
};

export default slowClients;
