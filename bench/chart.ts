// The chart of a bench run: for each throughput row, ssekit, the coalesced
// limit and Hono as ratios to the per-event baseline of the same run, drawn
// by Vega-Lite (compiled to Vega, rendered to SVG without a browser).
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { type BenchResults, THROUGHPUT } from "./run.ts";
import { SIZES } from "./scenario.ts";

function labels(bench: BenchResults): Record<string, string> {
  const { clients } = SIZES[bench.size].fanout;
  return {
    "stream": "N events, not awaited",
    "push": "await write() per event",
    "loopback-1": "loopback, 1 connection",
    "loopback-50": "loopback, 50 connections",
    "fanout": `fan-out, ${clients.toLocaleString("en-US")} clients`,
  };
}
const SERIES: Record<string, string> = {
  ssekit: "ssekit",
  coalesced: "coalesced limit",
  hono: "Hono streamSSE",
};

/** The SVG of the ratios of `bench`. */
export async function chart(bench: BenchResults): Promise<string> {
  const label = labels(bench);
  const values = [];
  for (const scenario of THROUGHPUT) {
    const base = bench.results.find((r) =>
      r.scenario === scenario && r.impl === "baseline"
    );
    for (const [impl, series] of Object.entries(SERIES)) {
      const row = bench.results.find((r) =>
        r.scenario === scenario && r.impl === impl
      );
      if (base === undefined || row === undefined) continue;
      values.push({
        row: label[scenario],
        series,
        ratio: Math.round(row.perSecond / base.perSecond * 100) / 100,
      });
    }
  }
  const spec: TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Throughput, × the per-event baseline of the same run",
      subtitle: `${bench.machine}; Deno ${bench.deno}; ${
        bench.date.slice(0, 10)
      }`,
    },
    width: 480,
    data: { values },
    encoding: {
      y: {
        field: "row",
        type: "nominal",
        sort: null,
        title: null,
        axis: { labelLimit: 240 },
      },
      yOffset: { field: "series", sort: Object.values(SERIES) },
      x: { field: "ratio", type: "quantitative", title: "× baseline" },
      color: {
        field: "series",
        sort: Object.values(SERIES),
        title: null,
        legend: { orient: "bottom" },
      },
    },
    layer: [
      { mark: "bar" },
      {
        mark: { type: "text", align: "left", dx: 3, fontSize: 9 },
        encoding: { text: { field: "ratio", format: ".2f" } },
      },
    ],
  };
  const view = new vega.View(vega.parse(compile(spec).spec), {
    renderer: "none",
  });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
