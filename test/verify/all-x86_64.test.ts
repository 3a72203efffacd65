import { verifyFixturesOn } from './fixtures.js';

verifyFixturesOn('x86_64');
