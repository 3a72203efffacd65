import { verifyFixturesOn } from './fixtures.js';

verifyFixturesOn('i386');
