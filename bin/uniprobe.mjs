#!/usr/bin/env node
// uniprobe's command line. The sources are TypeScript run through tsx's loader, so there is no
// build step between a checkout and a working command.
import { register } from 'tsx/esm/api';

register();
// A reader that went away (`uniprobe --help | head`) ends our output quietly, as for any
// well-behaved Unix tool: no stack trace for EPIPE on stdout or stderr.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
