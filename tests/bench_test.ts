// Every benchmark scenario at tiny sizes, so that `bench/` never rots. No
// timing is asserted: only that each scenario ran and its numbers are sane.
import assert from "node:assert/strict";
import { chart } from "../bench/chart.ts";
import { gcTrace, liveMidRound } from "../bench/gc.ts";
import { markdown, runBench, summary, targets } from "../bench/run.ts";
import { SCENARIOS } from "../bench/scenario.ts";
import { median, percentile } from "../bench/_stats.ts";

Deno.test("every benchmark scenario runs at tiny sizes with sane output", async () => {
  const bench = await runBench({ size: "tiny", fresh: false });
  const finite = (value: unknown) =>
    typeof value === "number" && Number.isFinite(value) && value >= 0;
  for (const scenario of SCENARIOS) {
    const rows = bench.results.filter((r) => r.scenario === scenario);
    assert.ok(
      rows.length >= (scenario === "topics" ? 2 : 3),
      `${scenario} ran for each implementation`,
    );
    for (const row of rows) {
      const where = `${scenario} ${row.impl}`;
      if (scenario === "topics") {
        // The scenario itself checked the bytes the clients received.
        for (const stage of row.stages) {
          assert.ok(stage.clients > 0 && stage.sends > 0, where);
          assert.ok(finite(stage.medianUs) && finite(stage.p99Us), where);
        }
      } else if (scenario === "idle") {
        for (const stage of row.stages) {
          assert.ok(stage.connections > 0, where);
          assert.ok(Number.isFinite(stage.heapPerConnection), where);
          assert.ok(Number.isFinite(stage.rssPerConnection), where);
        }
      } else if (scenario.startsWith("latency")) {
        assert.ok(row.samples > 0, where);
        assert.ok(finite(row.medianUs) && finite(row.p99Us), where);
      } else {
        // The scenario itself checked the bytes each client received.
        assert.ok(row.count > 0 && row.bytes > 0, where);
        assert.ok(finite(row.perSecond) && finite(row.nsPer), where);
        assert.ok(row.chunks >= 1, where);
      }
    }
  }
  const table = markdown(bench);
  assert.match(
    table,
    /\| in process: `await write\(\)` per event \| ssekit \|/,
  );
  assert.match(table, /\| one event to one topic per turn \| ssekit \| 50 \|/);
  assert.ok(targets(bench).some((t) => t.target.startsWith("topic send")));
  const checks = targets(bench);
  assert.ok(checks.length >= 7);
  assert.match(summary(checks), /^targets: (all \d+ met|\d+ of \d+ missed: )/);
  assert.ok(
    checks.some((t) => t.target === "fanout: ≥ 0.8× the coalesced limit"),
  );
  const svg = await chart(bench);
  assert.match(svg, /^<svg /);
  for (const label of ["ssekit", "coalesced limit", "fan-out, 20 clients"]) {
    assert.ok(svg.includes(label), `the chart shows ${label}`);
  }
});

Deno.test("the comparison with an older tree runs at tiny size with sane output", async () => {
  // Against HEAD, which every clone has: this checks the machinery (the
  // copy of the tree, both processes per round, the figures), not a speed.
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../bench/compare.ts", import.meta.url).pathname,
      "--against=HEAD",
      "--tiny",
      "--rounds=1",
      "--only=push,topics,latency-loopback",
    ],
    stderr: "inherit",
  }).output();
  assert.ok(out.success, "bench/compare.ts failed");
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  // A header, its rule, one row for push, one per topic size (two at tiny
  // size), two for loopback latency; then the verdict.
  assert.equal(lines.length, 2 + 1 + 2 + 2 + 1);
  for (const row of lines.slice(2, -1)) {
    assert.match(
      row,
      /^\| [^|]+ \| [^|]+ \| [\d,.]+ \| [\d,.]+ \| [\d.]+× \|$/,
    );
  }
  assert.match(
    lines.at(-1)!,
    /^compare: (all 5 rows within 5% or better|\d of 5 rows more than 5% worse: )/,
  );
});

const hasRedis = await new Deno.Command("redis-server", { args: ["--version"] })
  .output().then((out) => out.success).catch(() => false);
const IN_CI = Deno.env.get("CI") === "true";
if (!hasRedis && !IN_CI) {
  console.warn("Skipping the Redis benchmark: no redis-server on PATH.");
}

Deno.test({
  name: "the Redis fan-out benchmark runs at tiny size with sane output",
  ignore: !hasRedis && !IN_CI,
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../bench/redis.ts", import.meta.url).pathname,
        "--tiny",
      ],
      stderr: "inherit",
    }).output();
    assert.ok(out.success, "bench/redis.ts failed");
    const [json, row] = new TextDecoder().decode(out.stdout).trim().split("\n");
    const result = JSON.parse(json);
    assert.ok(result.aloneDeliveriesPerSecond > 0);
    assert.ok(result.redisDeliveriesPerSecond > 0);
    assert.match(
      row,
      /^\| fan-out, 10 events to 4 clients \| [\d,]+ \| [\d,]+ \| [\d.]+× \|$/,
    );
  },
});

Deno.test("with several runs, each row is the median run's", async () => {
  const bench = await runBench({
    size: "tiny",
    fresh: false,
    runs: 3,
    only: ["push"],
  });
  assert.equal(bench.runs, 3);
  assert.ok(bench.results.length >= 3);
  for (const row of bench.results) {
    assert.equal(row.runFigures.length, 3, row.impl);
    const sorted = [...row.runFigures].sort((a: number, b: number) => a - b);
    assert.equal(row.perSecond, sorted[1], row.impl);
  }
  assert.match(markdown(bench), /and of 3 processes per implementation/);
});

/** Runs bench/parse.ts with `args`, as it exits. */
function runParseBench(args: readonly string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../bench/parse.ts", import.meta.url).pathname,
      ...args,
    ],
    stderr: "piped",
  }).output();
}

/** Runs bench/parse.ts with `args`: its JSON line, parsed, and its rows. */
async function parseBench(...args: string[]) {
  const out = await runParseBench(args);
  assert.ok(
    out.success,
    `bench/parse.ts ${args.join(" ")} failed: ${
      new TextDecoder().decode(out.stderr)
    }`,
  );
  const [json, ...rows] = new TextDecoder().decode(out.stdout).trim().split(
    "\n",
  );
  return { result: JSON.parse(json), rows };
}

Deno.test("the parser benchmark runs at tiny size with sane output", async () => {
  const { result, rows } = await parseBench("--tiny");
  assert.equal(result.size, "tiny");
  // Three streams, each cut two ways, each read two ways by three readers
  // (two for the stream that is not ASCII, which has no floor); each run
  // checked the last message it got.
  assert.equal(result.rows.length, 12);
  for (const row of result.rows) {
    assert.ok(row.ssekitPerSecond > 0 && row.eventsourceParserPerSecond > 0);
    assert.ok(Number.isFinite(row.ratio) && row.ratio > 0);
    if (row.stream === "Chinese tokens") {
      assert.equal(row.builtinsAlonePerSecond, null);
      assert.equal(row.builtinsAloneRatio, null);
    } else {
      assert.ok(row.builtinsAlonePerSecond > 0);
      assert.ok(Number.isFinite(row.builtinsAloneRatio));
    }
  }
  assert.equal(rows.length, 12);
  for (const row of rows) {
    assert.match(
      row,
      /^\| (ticks|tokens|Chinese tokens), (16 KiB chunks|a chunk per event) \| (feed|stream) \| [\d,]+ \| [\d,]+ \| [\d.]+× \| ([\d.]+×|–) \|$/,
    );
  }
});

Deno.test("the parser benchmark's --runs=N gives each ratio's median and range over N processes", async () => {
  const check = (result: { rows: { ratios: number[] }[] }, rows: string[]) => {
    assert.equal(result.rows.length, rows.length);
    for (const row of result.rows) {
      assert.equal(row.ratios.length, 2);
      assert.ok(row.ratios.every((ratio: number) => ratio > 0));
    }
    for (const row of rows) {
      // The median, then the range, of the ratio and of the floor's.
      assert.match(
        row,
        /^\| [^|]+ \| (feed|stream) \| [\d.]+× \| [\d.]+–[\d.]+× \| ([\d.]+× \| [\d.]+–[\d.]+×|– \| –) \|$/,
      );
    }
  };
  // Each row in a process of its own, then every row in one process a run:
  // the same rows, in the same order.
  const names = [];
  for (const args of [["--runs=2"], ["--runs=2", "--together"]]) {
    const { result, rows } = await parseBench("--tiny", ...args);
    assert.equal(result.runs, 2);
    assert.equal(result.together, args.includes("--together"));
    assert.equal(rows.length, 12);
    check(result, rows);
    names.push(
      result.rows.map((row: Record<string, string>) =>
        `${row.stream}, ${row.chunking}, ${row.mode}`
      ),
    );
  }
  assert.deepEqual(names[0], names[1]);
  assert.equal(new Set(names[0]).size, 12);
  // One row: the same row, whichever way it is run.
  for (const args of [["--row=4"], ["--row=4", "--runs=2"]]) {
    const { result, rows } = await parseBench("--tiny", ...args);
    assert.equal(result.rows.length, 1);
    assert.match(rows[0], /^\| tokens, 16 KiB chunks \| feed \| /);
    if (args.includes("--runs=2")) check(result, rows);
  }
});

Deno.test("the parser benchmark rejects a bad --runs, --row or --together", async () => {
  for (
    const [args, message] of [
      [["--runs=0"], "--runs must be a whole number from 1, got 0"],
      [["--row=12"], "--row must be a whole number from 0 to 11, got 12"],
      [["--together"], "--together goes with --runs=N"],
    ] as const
  ) {
    const out = await runParseBench(["--tiny", ...args]);
    assert.equal(out.success, false, args.join(" "));
    assert.match(new TextDecoder().decode(out.stderr), new RegExp(message));
  }
});

Deno.test("bench/gc.ts sums a scenario's scavenges and reads a snapshot taken mid-round", async () => {
  const trace = await gcTrace("loopback-50", "ssekit", "tiny");
  // Even a tiny run allocates enough for a scavenge or two.
  assert.ok(trace.scavenges > 0, "the trace had scavenges");
  assert.ok(trace.pauseMs > 0 && Number.isFinite(trace.pauseMs));
  assert.ok(trace.survivedBytes > 0 && trace.promotedBytes >= 0);
  const live = await liveMidRound("ssekit", "tiny");
  assert.ok(live.liveBytes > 1e6, `${live.liveBytes} B live`);
  assert.ok(live.ropes > 0, "queued text is held as ropes");
});

Deno.test("bench/interleave.ts runs two implementations' rounds in one process", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      new URL("../bench/interleave.ts", import.meta.url).pathname,
      "--scenario=fanout",
      "--impls=coalesced,ssekit",
      "--rounds=3",
      "--size=tiny",
    ],
    stderr: "inherit",
  }).output();
  assert.ok(out.success, "bench/interleave.ts failed");
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.deepEqual(result.impls, ["coalesced", "ssekit"]);
  assert.equal(result.rounds, 3);
  for (const ms of result.medianMs) assert.ok(ms > 0 && Number.isFinite(ms));
  assert.ok(result.ratio > 0 && Number.isFinite(result.ratio));
});

Deno.test("the benchmarks' median and percentile", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(
    median([4, 1, 3, 2]),
    2.5,
    "an even count: the middle two's mean",
  );
  assert.equal(median([5]), 5);
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 to 1
  assert.equal(percentile(hundred, 0.99), 99, "nearest rank");
  assert.equal(percentile(hundred, 1), 100);
  assert.equal(percentile([7, 9], 0.5), 7);
  assert.deepEqual(
    hundred.slice(0, 2),
    [100, 99],
    "the input is not sorted in place",
  );
});
