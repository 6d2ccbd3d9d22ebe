#!/usr/bin/env node
// Entry point of the `ewii` command: loads the TypeScript sources through tsx.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../services/cli/main.ts");
process.exit(await main(process.argv));
