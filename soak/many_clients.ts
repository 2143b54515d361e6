// Many clients of one channel: 10,000 (short: 1,000) concurrent connections
// to soak/channel_server.ts, in client processes of at most 2,500 each (the
// open-file limit is per process). Every client must get every event, in
// order, with the ids the server gave; the memory each connection costs the
// server is compared with a bare hand-written stream's (`--mode bare`),
// measured the same way in the same run; and once the clients leave, the
// channel must be empty.
import { ChannelServer, type ServerStats } from "./channel_server.ts";
import { Client, type HoldResult, sumHold } from "./_client.ts";
import { atMost, delay, equals, format, type Scenario } from "./_util.ts";

const KIB = 1024;
/** Connections per client process. */
const PER_PROCESS = 2500;
/** Events sent once every client is connected, and their size. */
const EVENTS = 20;
const EVENT_BYTES = 200;
/** Clients that connect, get one event and leave before measuring. */
const WARM_UP = 200;
/**
 * RSS per connection may be this much over 1.5 × bare's. RSS moves in pages
 * and with the allocator's arenas: in first runs, two consecutive readings of
 * an idle server differed by up to ~1.5 MiB, which over 1,000 connections
 * (the short form) is ~1.5 KiB per connection. So 2 KiB, which at 10,000
 * connections is a 20 MiB slack: generous there, but the ratio still binds.
 */
const RSS_MARGIN = 2 * KIB;

/** What one server mode measured with `clients` connections. */
interface Run {
  /** Two readings at rest, half a second apart: their difference is noise. */
  rest: ServerStats;
  before: ServerStats;
  connected: ServerStats;
  allConnected: boolean;
  clients: HoldResult;
  /** What POST /send answered: the ids of the first and last events. */
  first?: string;
  last?: string;
  after: ServerStats;
  emptied: boolean;
  exit: { code: number | undefined; ms: number };
  problems: string[];
  connectSeconds: number;
}

/** Runs `n` hold clients over processes of at most PER_PROCESS each. */
function holdClients(
  port: number,
  n: number,
  first: number,
  last: number,
  deadlineMs: number,
): Client<HoldResult>[] {
  const clients: Client<HoldResult>[] = [];
  for (let left = n; left > 0; left -= PER_PROCESS) {
    clients.push(
      new Client<HoldResult>("hold", port, [
        "--conns",
        String(Math.min(PER_PROCESS, left)),
        "--first",
        String(first),
        "--last",
        String(last),
        "--id-seq",
        "--deadline",
        String(deadlineMs),
        "--concurrency",
        "50",
      ]),
    );
  }
  return clients;
}

/** One server (`mode`), `n` clients, `EVENTS` events; what it measured. */
async function measure(
  mode: "channel" | "bare",
  n: number,
  short: boolean,
  log: (line: string) => void,
): Promise<Run> {
  const server = await ChannelServer.start(["--mode", mode]);
  try {
    const deadlineMs = short ? 30_000 : 150_000;
    // Warm-up: the code paths of a connection, an event and a close have
    // run (and compiled) before the first measurement.
    let sent = (await server.stats()).sent;
    const warm = holdClients(server.port, WARM_UP, sent + 1, sent + 1, 20_000);
    await server.until((s) => s.size === WARM_UP, 20_000, 50);
    await server.send(1, EVENT_BYTES);
    await Promise.all(warm.map((c) => c.result()));
    await server.until((s) => s.size === 0, 10_000, 50);
    await delay(200);
    const rest = await server.stats();
    await delay(500);
    const before = await server.stats();
    sent = before.sent;

    log(`${mode}: connecting ${format(n)} clients`);
    const started = performance.now();
    const clients = holdClients(
      server.port,
      n,
      sent + 1,
      sent + EVENTS,
      deadlineMs,
    );
    const all = await server.until((s) => s.size >= n, deadlineMs, 500);
    const connectSeconds = (performance.now() - started) / 1000;
    await delay(500); // let the last heads and first reads settle
    const connected = await server.stats();
    log(
      `${mode}: ${format(connected.size)} connected in ${
        connectSeconds.toFixed(1)
      } s; heap ${format(connected.heapUsed / 2 ** 20)} MiB, rss ${
        format(connected.rss / 2 ** 20)
      } MiB`,
    );
    const answer = await server.send(EVENTS, EVENT_BYTES);
    const result = sumHold(await Promise.all(clients.map((c) => c.result())));
    const emptied = await server.until(
      (s) => s.size === 0 && s.opened === s.closed,
      10_000,
      100,
    );
    const exit = await server.exit();
    return {
      rest,
      before,
      connected,
      allConnected: all.ok,
      clients: result,
      first: answer.first,
      last: answer.last,
      after: emptied.stats,
      emptied: emptied.ok,
      exit,
      problems: server.problems(),
      connectSeconds,
    };
  } finally {
    await server.proc.stop();
  }
}

/** Per connection, in bytes: what `key` grew by, over `n`. */
function perConnection(run: Run, key: "heapUsed" | "rss", n: number): number {
  return (run.connected[key] - run.before[key]) / n;
}

/** How much two readings at rest differed, over `n`: the worse server's. */
function noise(a: Run, b: Run, key: "heapUsed" | "rss", n: number): number {
  return Math.max(
    Math.abs(a.before[key] - a.rest[key]),
    Math.abs(b.before[key] - b.rest[key]),
  ) / n;
}

const manyClients: Scenario = async ({ short, log }) => {
  const started = performance.now();
  const n = short ? 1000 : 10_000;
  const bare = await measure("bare", n, short, log);
  const channel = await measure("channel", n, short, log);
  const heap = perConnection(channel, "heapUsed", n);
  const bareHeap = perConnection(bare, "heapUsed", n);
  const rss = perConnection(channel, "rss", n);
  const bareRss = perConnection(bare, "rss", n);
  const c = channel.clients;
  const kib = (bytes: number) => `${format(bytes / KIB)} KiB`;
  return {
    scenario: "many-clients",
    summary: `${format(n)} clients × ${EVENTS} events of ${EVENT_BYTES} B, ` +
      `in ${
        Math.ceil(n / PER_PROCESS)
      } client process(es), against a bare stream`,
    seconds: (performance.now() - started) / 1000,
    figures: {
      "channel: heap per connection": kib(heap),
      "bare: heap per connection": kib(bareHeap),
      "channel: RSS per connection": kib(rss),
      "bare: RSS per connection": kib(bareRss),
      "channel − bare, heap per connection": kib(heap - bareHeap),
      "noise at rest, per connection (heap / RSS, worse of the two servers)":
        `${kib(noise(channel, bare, "heapUsed", n))} / ${
          kib(noise(channel, bare, "rss", n))
        }`,
      "channel: heap / RSS with all connected": `${
        format(channel.connected.heapUsed / 2 ** 20)
      } / ${format(channel.connected.rss / 2 ** 20)} MiB`,
      "bare: heap / RSS with all connected": `${
        format(bare.connected.heapUsed / 2 ** 20)
      } / ${format(bare.connected.rss / 2 ** 20)} MiB`,
      "time to connect all (channel / bare)": `${
        channel.connectSeconds.toFixed(1)
      } / ${bare.connectSeconds.toFixed(1)} s`,
      "events received (channel)": format(c.events),
      "connect retries (channel / bare)":
        `${c.retries} / ${bare.clients.retries}`,
      "first violations": [...c.violations, ...bare.clients.violations]
        .join("; ") || "none",
      "client errors": [...c.errors, ...bare.clients.errors].join("; ") ||
        "none",
    },
    checks: [
      equals(
        "channel: all clients connected at the same time",
        channel.allConnected,
        true,
      ),
      equals("channel: clients that got every event in order", c.complete, n),
      equals("channel: clients with a violation", c.violating, 0),
      equals(
        "channel: the last id every client saw is /send's",
        c.lastIds.join(),
        channel.last ?? "none",
      ),
      equals(
        "bare: clients that got every event in order",
        bare.clients.complete,
        n,
      ),
      atMost(
        "heap per connection, ≤ bare's + 2 KiB",
        heap / KIB,
        bareHeap / KIB + 2,
        " KiB",
      ),
      atMost(
        `RSS per connection, ≤ 1.5 × bare's + ${RSS_MARGIN / KIB} KiB`,
        rss / KIB,
        (1.5 * bareRss + RSS_MARGIN) / KIB,
        " KiB",
      ),
      equals("channel: size after the clients left", channel.after.size, 0),
      equals(
        "channel: connections opened − closed",
        channel.after.opened - channel.after.closed,
        0,
      ),
      equals(
        "channel: server exit code after /exit, by itself",
        channel.exit.code ?? "still running",
        0,
      ),
      equals(
        "servers: lines saying error",
        channel.problems.length + bare.problems.length,
        0,
      ),
    ],
  };
};

export default manyClients;
