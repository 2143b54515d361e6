// The garbage collector's share of one scenario, per implementation, each
// in a fresh process: the scavenges (young-generation collections) V8
// reports with `--trace-gc-nvp`, their pauses, and the bytes that survived
// them or were promoted to the old generation. With `--snapshot`, also what
// is live halfway through a round of 50 loopback connections (a heap
// snapshot after a full GC): so that more survivors can be told apart from
// more live data.
//
//   deno run -A bench/gc.ts [--scenario=loopback-50] [--impl=ssekit,coalesced]
//                           [--size=full|quick|tiny] [--snapshot]
//
// Prints a table on stdout; numbers move between runs, as the bench's do.

import v8 from "node:v8";
import { parseArgs } from "node:util";
import { IMPLS, tick } from "./impls.ts";
import { SCENARIOS, type Size, SIZES } from "./scenario.ts";

const SCENARIO = new URL("./scenario.ts", import.meta.url).pathname;
const CLIENT = new URL("./client.ts", import.meta.url).pathname;

/** What `--trace-gc-nvp` said of the scavenges of one run, summed. */
export interface GcTrace {
  scavenges: number;
  pauseMs: number;
  survivedBytes: number;
  promotedBytes: number;
}

/** What a heap snapshot holds: bytes of live objects, and how many ropes. */
export interface Live {
  liveBytes: number;
  ropes: number;
}

/** Runs `scenario` for `impl` under `--trace-gc-nvp`; sums its scavenges. */
export async function gcTrace(
  scenario: string,
  impl: string,
  size: Size,
): Promise<GcTrace> {
  const { success, stdout } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc,--trace-gc-nvp",
      SCENARIO,
      `--scenario=${scenario}`,
      `--impl=${impl}`,
      `--size=${size}`,
    ],
    stderr: "inherit",
  }).output();
  if (!success) throw new Error(`${scenario} ${impl} failed`);
  // V8 writes one `GC: {…}` object per collection to stdout, between the
  // scenario's own lines; only the scavenges (`"gc":"s"`) are summed.
  const trace = {
    scavenges: 0,
    pauseMs: 0,
    survivedBytes: 0,
    promotedBytes: 0,
  };
  for (const entry of new TextDecoder().decode(stdout).split("GC: ")) {
    if (!entry.startsWith('{"pause"') || !entry.includes('"gc":"s"')) continue;
    const field = (name: string) =>
      Number(entry.match(new RegExp(`"${name}":([0-9.]+)`))?.[1] ?? 0);
    trace.scavenges++;
    trace.pauseMs += field("pause");
    trace.survivedBytes += field("new_space_survived");
    trace.promotedBytes += field("promoted");
  }
  return trace;
}

/**
 * Serves the loopback scenario's 50 connections for `impl`, three rounds,
 * and takes a heap snapshot halfway through the second.
 */
export async function liveMidRound(impl: string, size: Size): Promise<Live> {
  const conns = 50;
  const perConn = Math.ceil(SIZES[size].events / conns);
  const at = Math.round(perConn * conns * 1.5);
  const file = await Deno.makeTempFile({ suffix: ".heapsnapshot" });
  let written = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const sink = IMPLS[impl].open(request);
      (async () => {
        for (let i = 1; i <= perConn; i++) {
          await sink.write(tick(i));
          if (++written === at) v8.writeHeapSnapshot(file);
        }
        sink.close();
      })().catch(() => {});
      return sink.response;
    },
  );
  try {
    const { success } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        CLIENT,
        "stream",
        `--port=${server.addr.port}`,
        `--conns=${conns}`,
        "--rounds=3",
      ],
      stdout: "null",
      stderr: "inherit",
    }).output();
    if (!success) throw new Error(`The client failed for ${impl}`);
  } finally {
    await server.shutdown();
  }
  const snapshot = JSON.parse(await Deno.readTextFile(file));
  await Deno.remove(file);
  const { node_fields: fields, node_types: [types] } = snapshot.snapshot.meta;
  const type = fields.indexOf("type"), self = fields.indexOf("self_size");
  const nodes: number[] = snapshot.nodes;
  const live = { liveBytes: 0, ropes: 0 };
  for (let i = 0; i < nodes.length; i += fields.length) {
    live.liveBytes += nodes[i + self];
    if (types[nodes[i + type]] === "concatenated string") live.ropes++;
  }
  return live;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      scenario: { type: "string", default: "loopback-50" },
      impl: { type: "string", default: "ssekit,coalesced" },
      size: { type: "string", default: "full" },
      snapshot: { type: "boolean", default: false },
    },
  });
  const { scenario, size } = values;
  if (!(SCENARIOS as readonly string[]).includes(scenario)) {
    throw new RangeError(`Unknown --scenario=${scenario}`);
  }
  if (!(size in SIZES)) throw new RangeError(`Unknown --size=${size}`);
  const impls = values.impl.split(",");
  for (const impl of impls) {
    if (!(impl in IMPLS)) throw new RangeError(`Unknown --impl=${impl}`);
  }
  const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
  console.log(
    `| ${scenario}, ${size} | scavenges | pauses, ms | survived, MB | promoted, MB |` +
      (values.snapshot ? " live mid-round, MB | ropes |" : ""),
  );
  console.log(
    `| --- | ---: | ---: | ---: | ---: |${
      values.snapshot ? " ---: | ---: |" : ""
    }`,
  );
  for (const impl of impls) {
    const trace = await gcTrace(scenario, impl, size as Size);
    let row = `| ${IMPLS[impl].label} | ${trace.scavenges} | ${
      trace.pauseMs.toFixed(1)
    } | ${mb(trace.survivedBytes)} | ${mb(trace.promotedBytes)} |`;
    if (values.snapshot) {
      const live = await liveMidRound(impl, size as Size);
      row += ` ${mb(live.liveBytes)} | ${live.ropes} |`;
    }
    console.log(row);
  }
}
