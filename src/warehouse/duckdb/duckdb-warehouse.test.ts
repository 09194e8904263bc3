import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { warehouseConformance } from '../testing/conformance.js';
import { DuckDbWarehouse } from './duckdb-warehouse.js';

const root = mkdtempSync(join(tmpdir(), 'vigil-wh-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

warehouseConformance('duckdb', (storage) => DuckDbWarehouse.open(join(root, storage)));
