// Debian's nginx as a child process of a test (or of the soak suite), with
// a config written to a temp dir of its own, on a free loopback port.
import { delay, freePort } from "./util.ts";

/** Where Debian installs nginx (outside a user's PATH). */
export const NGINX = "/usr/sbin/nginx";

/** Whether nginx is installed. */
export const found: boolean = await Deno.stat(NGINX).then(
  (info) => info.isFile,
  () => false,
);

/** What a config adds to the fixed part that {@linkcode startNginx} writes. */
export interface NginxOptions {
  /**
   * The directives of the `http` block, given the port to listen on:
   * usually one `server { listen 127.0.0.1:${port}; … }`.
   */
  http(port: number): string;
  /** Directives of the main context, such as `worker_rlimit_nofile`. */
  main?: string;
  /** `worker_connections`. */
  connections?: number;
}

/** An nginx started by {@linkcode startNginx}. */
export interface Nginx {
  /** The loopback port it listens on. */
  readonly port: number;
  /** The lines of its error log at `warn` and above. */
  errors(): Promise<string[]>;
  /** Stops it (SIGTERM, then SIGKILL after 5 s) and removes its dir. */
  stop(): Promise<void>;
}

/**
 * Writes a config (one worker process, no daemon, every path in a temp dir,
 * no access log) around `options.http` and starts nginx on it; resolves once
 * it accepts connections.
 */
export async function startNginx(options: NginxOptions): Promise<Nginx> {
  const dir = await Deno.makeTempDir({ prefix: "ssekit-nginx-" });
  const port = freePort();
  const temp = ["body", "proxy", "fastcgi", "uwsgi", "scgi"];
  for (const sub of temp) await Deno.mkdir(`${dir}/${sub}`);
  const config = `# Written by tests/nginx_util.ts
daemon off;
master_process off;
worker_processes 1;
${options.main ?? ""}
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections ${options.connections ?? 1024}; }
http {
  access_log off;
${
    temp.map((sub) =>
      `  ${sub === "body" ? "client_body" : sub}_temp_path ${dir}/${sub};`
    ).join("\n")
  }
${options.http(port)}
}
`;
  await Deno.writeTextFile(`${dir}/nginx.conf`, config);
  const child = new Deno.Command(NGINX, {
    args: ["-p", dir, "-e", `${dir}/error.log`, "-c", `${dir}/nginx.conf`],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let exited = false;
  child.status.then(() => exited = true);
  const log = () => Deno.readTextFile(`${dir}/error.log`).catch(() => "");
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // It has exited.
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // It has exited.
      }
    }, 5000);
    await child.status;
    clearTimeout(timer);
    await stderr;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  for (let i = 0; i < 100 && !exited; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return {
        port,
        async errors() {
          return (await log()).split("\n").filter((line) =>
            / \[(warn|error|crit|alert|emerg)\] /.test(line)
          );
        },
        stop,
      };
    } catch {
      await delay(50);
    }
  }
  const why = `${await log()}`;
  await stop();
  throw new Error(`nginx did not start:\n${await stderr}\n${why}`.trim());
}
