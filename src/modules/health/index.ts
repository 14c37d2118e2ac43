export { healthModule } from './health.module';
export { HealthJob, HealthQueue, type HealthPingResult } from './health.processor';
