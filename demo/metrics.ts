/**
 * The demo's `/metrics`: the counters of its apps in the Prometheus text
 * exposition format (version 0.0.4), which Prometheus and the agents that
 * speak its format scrape.
 *
 * @see {@link https://prometheus.io/docs/instrumenting/exposition_formats/}
 *
 * @module
 */

/** One metric family: its name, what it means, and its samples. */
export interface Metric {
  /** A Prometheus name; a counter's ends in `_total`. */
  name: string;
  /** One line on what it counts. */
  help: string;
  /** A `counter` only grows; a `gauge` goes up and down. */
  type: "counter" | "gauge";
  /** One value per set of labels. */
  samples: { labels?: Record<string, string>; value: number }[];
}

/** The media type of the text format. */
export const METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * `metrics` in the text format: per family a `# HELP` and a `# TYPE` line,
 * then its samples. Throws a `TypeError` for a name that the format does
 * not allow, or a counter whose name does not end in `_total`.
 */
export function prometheusText(metrics: readonly Metric[]): string {
  let text = "";
  for (const { name, help, type, samples } of metrics) {
    if (!NAME.test(name) || (type === "counter" && !name.endsWith("_total"))) {
      throw new TypeError(`Cannot format metric: bad name ${name}`);
    }
    text += `# HELP ${name} ${
      help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
    }\n`;
    text += `# TYPE ${name} ${type}\n`;
    for (const { labels = {}, value } of samples) {
      const pairs = Object.entries(labels).map(([label, value]) => {
        if (!LABEL.test(label)) {
          throw new TypeError(`Cannot format metric: bad label ${label}`);
        }
        return `${label}="${
          value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(
            /\n/g,
            "\\n",
          )
        }"`;
      });
      text += `${name}${pairs.length ? `{${pairs.join(",")}}` : ""} ${value}\n`;
    }
  }
  return text;
}
