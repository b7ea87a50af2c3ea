#!/usr/bin/env node
// Loads the TypeScript entry point through tsx's loader in this same process, so `npx pgraft ...`
// needs no build step and signals (SIGTERM, SIGINT) reach the node directly.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
