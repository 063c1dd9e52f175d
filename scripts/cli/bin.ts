/** The packaged `cordon`'s entry (dist/cordon.mjs, built by scripts/build-cli.mjs). */
import { main } from './main.js';

await main();
