import { randomBytes } from 'node:crypto';
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

/** What an operator exports before `docker compose up`; compose substitutes `${VAR}` / `${VAR:?message}`. */
const OPERATOR_ENV: Record<string, string> = { JWT_SECRET: randomBytes(32).toString('hex') };
const RAW_COMPOSE = readFileSync(resolve(__dirname, '../../compose.yaml'), 'utf8');

/** No Docker engine runs here, so the compose file is checked against the config module instead of started. */
describe('compose.yaml', () => {
  const interpolated = RAW_COMPOSE.replace(/\$\{(\w+)(?::\?[^}]*)?\}/g, (_match, name: string) => {
    const value = OPERATOR_ENV[name];
    if (value === undefined) throw new Error(`compose.yaml needs ${name}, which the test does not provide`);
    return value;
  });
  const compose = parse(interpolated, { merge: true }) as {
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
    // The gateway and the worker run as `npm start` and `npm run worker` do, with the same node flags.
    const { scripts } = JSON.parse(readFileSync(resolve(__dirname, '../../package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(services.worker!.command).toEqual(scripts.worker!.split(' '));
    expect(services.gateway!.command).toEqual(scripts.start!.split(' '));
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
        `127.0.0.1:${config.metrics.gatewayPort}:${config.metrics.gatewayPort}`,
      ]),
    );
    // Prometheus scrapes the ports the processes publish, under their service names.
    const scrape = readFileSync(resolve(__dirname, '../../monitoring/prometheus.yml'), 'utf8');
    expect(scrape).toContain(`gateway:${config.metrics.gatewayPort}`);
    const worker = loadConfig(services.worker!.environment);
    expect(scrape).toContain(`worker:${worker.metrics.workerPort}`);
    expect(services.worker!.ports).toContain(
      `127.0.0.1:${worker.metrics.workerPort}:${worker.metrics.workerPort}`,
    );
    // Inside the compose network Prometheus must reach the listeners, which otherwise bind loopback.
    expect([config.metrics.host, worker.metrics.host]).toEqual(['0.0.0.0', '0.0.0.0']);
  });

  it('takes the JWT secret from the operator, never a value written in the file (production refuses those)', () => {
    expect(RAW_COMPOSE).toMatch(/JWT_SECRET: \$\{JWT_SECRET:\?[^}]+\}/);
  });
});
