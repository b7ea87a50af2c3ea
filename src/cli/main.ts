/** Entry point of the `pgraft` command (bin/pgraft.js loads it through tsx). */
import { main } from "./pgraft.ts";

process.exitCode = await main(process.argv.slice(2));
