// The ESM user: `import ... from 'fastgru'`.  node app.mjs EXPECTED-BACKEND [SOURCE]
import * as fastgru from 'fastgru';
import { checkInstalled } from './checks.mjs';

const [expected, source] = process.argv.slice(2);
await checkInstalled(fastgru, { expected, source, label: 'esm' });
