import { verifyFixturesOn } from './fixtures.js';

verifyFixturesOn('sparc64');
