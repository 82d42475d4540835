/** The isolated group 'deployment' (test/isolated-suites.ts): a world of its own, its files one after another. */
import { runGroup } from './run-group';

runGroup('deployment');
