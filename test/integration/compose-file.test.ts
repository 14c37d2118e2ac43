import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config/config';

interface ComposeService {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
}

/** No Docker engine runs here, so the compose file is checked against the config module instead of started. */
describe('compose.yaml', () => {
  const compose = parse(readFileSync(resolve(__dirname, '../../compose.yaml'), 'utf8'), { merge: true }) as {
    services: Record<string, ComposeService>;
  };
  const services = compose.services;

  it('has Postgres with pgvector, Redis, OpenSearch, the gateway, a worker, Prometheus and Grafana', () => {
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining([
        'postgres',
        'redis',
        'opensearch',
        'gateway',
        'worker',
        'prometheus',
        'grafana',
      ]),
    );
    expect(services.postgres!.image).toMatch(/pgvector/);
    expect(services.worker!.command).toEqual(['node', 'dist/src/worker.js']);
  });

  it.each(['gateway', 'worker', 'migrate'])(
    '%s sets only variables the config module reads, and they parse',
    (name) => {
      const env = services[name]!.environment!;
      for (const key of Object.keys(env)) expect(CONFIG_VARIABLES).toContain(key);
      const config = loadConfig(env);
      expect(config.database.driver).toBe('postgres');
      expect(config.redis.driver).toBe('redis');
    },
  );

  it('points URLs at the services and publishes the ports the config uses', () => {
    const env = services.gateway!.environment!;
    const database = new URL(env.DATABASE_URL!);
    const redis = new URL(env.REDIS_URL!);
    const opensearch = new URL(env.OPENSEARCH_URL!);
    expect(services).toHaveProperty(database.hostname);
    expect(services).toHaveProperty(redis.hostname);
    expect(services).toHaveProperty(opensearch.hostname);
    expect(services.postgres!.ports).toContain(`${database.port}:5432`);
    expect(services.redis!.ports).toContain(`${redis.port}:6379`);
    const config = loadConfig(env);
    expect(services.gateway!.ports).toEqual(
      expect.arrayContaining([
        `${config.http.port}:${config.http.port}`,
        `${config.metrics.gatewayPort}:${config.metrics.gatewayPort}`,
      ]),
    );
    // Prometheus scrapes the ports the processes publish, under their service names.
    const scrape = readFileSync(resolve(__dirname, '../../monitoring/prometheus.yml'), 'utf8');
    expect(scrape).toContain(`gateway:${config.metrics.gatewayPort}`);
    const worker = loadConfig(services.worker!.environment);
    expect(scrape).toContain(`worker:${worker.metrics.workerPort}`);
    expect(services.worker!.ports).toContain(`${worker.metrics.workerPort}:${worker.metrics.workerPort}`);
  });
});
