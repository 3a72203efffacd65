/**
 * Importing this module makes the synchronous instruction decoders usable: x86's decoder needs
 * Capstone (arch/capstone.ts), whose factory is asynchronous, so it is awaited here once, at module
 * load (top-level await). The modules that decode instructions (kprobes, uprobes, placement)
 * import it; the engine alone does not, so a run without probes starts without Capstone.
 */
import { loadCapstone } from './capstone.js';

await loadCapstone();
