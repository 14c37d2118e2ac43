import 'reflect-metadata';
import { loadConfig } from './src/config/config';
import { createCliDataSource } from './src/platform/db/data-source.factory';
import { MODULES, schemaOf } from './src/modules/modules';

/**
 * The DataSource for the typeorm CLI (`npx typeorm -d dist/ormconfig.js migration:show`).
 * Needs DATABASE_URL: the embedded database only exists while the gateway runs.
 */
const config = loadConfig();
if (!config.database.url) throw new Error('DATABASE_URL: set it to use the typeorm CLI');

export default createCliDataSource({ url: config.database.url, ...schemaOf(MODULES) });
