import { verifyFixturesOn } from './fixtures.js';

verifyFixturesOn('ppc64');
