// Plain-Node entry for the engine's TypeScript: `node --import ./scripts/node-register.mjs some.ts`.
// Registers tsx (TypeScript, `.ts` import specifiers) and then the `?raw` loader (scripts/raw-loader.mjs);
// hooks registered later run first, so `*.wgsl?raw` never reaches tsx.
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

registerTsx();
register('./raw-loader.mjs', import.meta.url);
