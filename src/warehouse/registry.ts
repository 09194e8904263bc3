/** Opens the configured warehouse; drivers of other backends are imported only when chosen. */
import type { Config } from '../core/config.js';
import type { Warehouse } from './types.js';

export async function openWarehouse(config: Config): Promise<Warehouse> {
  switch (config['warehouse.backend']) {
    case 'duckdb': {
      const { DuckDbWarehouse } = await import('./duckdb/duckdb-warehouse.js');
      return DuckDbWarehouse.open(config.dataDir, { memoryMB: config['warehouse.duckdbMemoryMB'] });
    }
    case 'postgres': {
      const { PostgresWarehouse } = await import('./postgres/postgres-warehouse.js');
      return PostgresWarehouse.open(config['warehouse.postgresUrl']);
    }
    default:
      throw new Error(`unknown warehouse backend ${String(config['warehouse.backend'])}`);
  }
}
