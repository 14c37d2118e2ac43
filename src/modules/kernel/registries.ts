/*
 * Open interfaces that slices extend by declaration merging, so the kernel never names a slice:
 *   declare module '../kernel/registries' { interface RequestLoaders { user: DataLoader<...> } }
 * Augmentation must name this file (not the kernel's index), which is why slices may import it directly.
 */

/** Per-request (HTTP) or per-operation (WebSocket) loaders, built by each module's `loaders`; never shared. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface RequestLoaders {}

/** The public services of every module, by module name, built in module-list order. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface ServiceRegistry {}
