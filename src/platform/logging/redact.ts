/**
 * `scheme://user:password@`: the user part may be empty (`redis://:secret@host`); the password runs to the last `@`
 * before the host, as URL parsers read it (`u:p@ss@host` has the password `p@ss`).
 */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^:@/\s]*):([^/\s]+)@/gi;

/**
 * Masks the password of every URL in `text` (a bare URL, or a message that quotes one). The one place credentials are
 * taken out of what the gateway logs or shows: startup log, readiness details, error messages.
 */
export function redactCredentials(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1$2:***@');
}
