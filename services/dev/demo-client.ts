import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { loadClientConfig, type ClientConfig } from "../client/config.js";

export const DEMO_TENANT = "acme";
export const DEMO_CLIENT_PATH = "/client/site-1";
export const DEMO_CLIENT_CONFIG = resolve(new URL("../../examples/client/acme-client.yaml", import.meta.url).pathname);

/**
 * Writes `<dir>/client.yaml` from the demo client config with this run's
 * CA and relay addresses and an absolute dataset path, and loads it.
 */
export function writeDemoClientConfig(options: { dir: string; caAddress: string; relays: string[] }): ClientConfig {
  const example = parseYaml(readFileSync(DEMO_CLIENT_CONFIG, "utf8")) as Record<string, unknown> & { datasets: Record<string, Record<string, unknown>> };
  const exampleDir = dirname(DEMO_CLIENT_CONFIG);
  for (const dataset of Object.values(example.datasets)) {
    for (const key of ["path", "queries_file"]) {
      const value = dataset[key];
      if (typeof value === "string" && !isAbsolute(value)) dataset[key] = resolve(exampleDir, value);
    }
  }
  const config = { ...example, identity_dir: join(options.dir, "identity"), ca: options.caAddress, relays: options.relays };
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const file = join(options.dir, "client.yaml");
  writeFileSync(file, `# Written by ewii dev from ${DEMO_CLIENT_CONFIG}; edits are overwritten on the next run.\n` + stringifyYaml(config));
  return loadClientConfig(file);
}
