import { verifyFixturesOn } from './fixtures.js';

verifyFixturesOn('ppc32');
