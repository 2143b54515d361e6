// Builds the npm package from the same sources as the JSR one:
//
//   deno task npm            writes dist/npm/ (then: npm pack ./dist/npm)
//
// TypeScript's own compiler (npm:typescript, pinned) emits one ES module and
// one `.d.ts` per source file, rewriting the `.ts` of relative imports to
// `.js`, so nothing in the output is edited by hand. Name, version, license
// and entry points come from deno.json.

const ROOT = new URL("../", import.meta.url).pathname;
const TYPESCRIPT = "npm:typescript@5.9.3/tsc";

interface DenoJson {
  name: string;
  version: string;
  license: string;
  exports: Record<string, string>;
}

/** The package.json of the npm package, for the entry points of deno.json. */
export function packageJson(deno: DenoJson): Record<string, unknown> {
  const exports: Record<string, { types: string; default: string }> = {};
  for (const [entry, source] of Object.entries(deno.exports)) {
    const base = source.replace(/\.ts$/, "");
    exports[entry] = { types: `${base}.d.ts`, default: `${base}.js` };
  }
  return {
    name: deno.name,
    version: deno.version,
    description:
      "Server-Sent Events on web-standard streams: spec-exact encoding, one close path, backpressure, keep-alive, broadcast with resume",
    license: deno.license,
    type: "module",
    exports,
    main: exports["."].default,
    types: exports["."].types,
    files: ["*.js", "*.d.ts", "README.md", "LICENSE"],
    sideEffects: false,
    engines: { node: ">=20" },
    keywords: ["sse", "server-sent-events", "event-stream", "eventsource"],
  };
}

/** Builds the package into `outDir` (emptied first); returns its path. */
export async function buildNpm(outDir = `${ROOT}dist/npm`): Promise<string> {
  const deno = JSON.parse(
    await Deno.readTextFile(`${ROOT}deno.json`),
  ) as DenoJson;
  await Deno.remove(outDir, { recursive: true }).catch(() => {});
  const work = await Deno.makeTempDir({ prefix: "ssekit-npm-" });
  try {
    const tsconfig = `${work}/tsconfig.json`;
    await Deno.writeTextFile(
      tsconfig,
      JSON.stringify({
        compilerOptions: {
          // Node 20 runs ES2022; the sources use ES2024 string methods only
          // where Node 20 has them.
          target: "ES2022",
          lib: ["ES2024", "DOM"],
          module: "ES2022",
          moduleResolution: "bundler",
          rewriteRelativeImportExtensions: true,
          declaration: true,
          strict: true,
          skipLibCheck: true,
          noEmitOnError: true,
          rootDir: ROOT,
          outDir,
        },
        files: Object.values(deno.exports).map((path) => `${ROOT}${path}`),
      }),
    );
    const tsc = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", TYPESCRIPT, "-p", tsconfig],
      cwd: ROOT,
    }).output();
    if (!tsc.success) {
      throw new Error(
        `tsc failed:\n${new TextDecoder().decode(tsc.stdout)}${
          new TextDecoder().decode(tsc.stderr)
        }`,
      );
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
  await Deno.writeTextFile(
    `${outDir}/package.json`,
    JSON.stringify(packageJson(deno), null, 2) + "\n",
  );
  for (const file of ["README.md", "LICENSE"]) {
    await Deno.copyFile(`${ROOT}${file}`, `${outDir}/${file}`);
  }
  return outDir;
}

if (import.meta.main) {
  const out = await buildNpm();
  console.log(
    `Wrote ${out.replace(ROOT, "")}; pack it with: npm pack ./dist/npm`,
  );
}
