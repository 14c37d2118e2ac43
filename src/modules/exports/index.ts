// Exports' public face: its module and its service's types.
export { exportsModule, type ExportServices } from './exports.module';
export type { ExportService } from './export.service';
export type { StartExportInput } from './export.query';
export type { ExportJobView } from './export.types';
