/** The reports' error codes (mapped to `extensions.code` at the edge). */
export const ReportErrorCode = {
  REPORT_TOO_EXPENSIVE: 'REPORT_TOO_EXPENSIVE',
  REPORT_TIMEOUT: 'REPORT_TIMEOUT',
  REPORT_ROLLUPS_BUSY: 'REPORT_ROLLUPS_BUSY',
} as const;
