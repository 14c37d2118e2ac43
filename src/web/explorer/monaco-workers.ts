/**
 * Monaco (GraphiQL's editor) runs its language services in web workers. GraphiQL ships worker setups for Vite and
 * webpack only; scripts/build-web.js bundles the three workers as their own files, and the page names them.
 */
export interface WorkerUrls {
  editor: string;
  json: string;
  graphql: string;
}

interface MonacoEnvironment {
  getWorker(workerId: string, label: string): Worker;
}

export function configureMonacoWorkers(urls: WorkerUrls): void {
  (globalThis as { MonacoEnvironment?: MonacoEnvironment }).MonacoEnvironment = {
    getWorker(_workerId, label) {
      const url = label === 'json' || label === 'graphql' ? urls[label] : urls.editor;
      return new Worker(url, { type: 'module', name: label });
    },
  };
}
