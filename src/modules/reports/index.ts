// Reports' public face: its module and its service's types.
export { reportsModule, type ReportServices } from './reports.module';
export type { ReportService, ReportView } from './report.service';
