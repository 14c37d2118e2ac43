// Exports' public face: its module and its service's types.
export { exportsModule, type ExportServices } from './exports.module';
export type { ExportService, ExportJobView, StartExportInput } from './export.service';
