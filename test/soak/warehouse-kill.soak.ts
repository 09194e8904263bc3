/**
 * test/warehouse-kill.test.ts at soak length (`npm run test:soak`): 300 SIGKILLs
 * (VIGIL_SOAK_WAREHOUSE_KILLS) of a process writing to the DuckDB warehouse. At the rate DuckDB
 * 1.5 crashed before the replaced tables lost their index (about once per 130 restarts), 300
 * restarts would have crashed nine runs in ten.
 */
process.env.VIGIL_WAREHOUSE_KILLS ??= process.env.VIGIL_SOAK_WAREHOUSE_KILLS ?? '300';
await import('../warehouse-kill.test.js');
