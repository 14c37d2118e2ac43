import { parentPort } from 'node:worker_threads';
import { CPU_ACTIONS } from './workflow.cpu-actions';

/** One CPU-pool thread: runs a pure action per message and answers with its result or error. */
interface Task {
  id: number;
  action: string;
  config: Record<string, unknown>;
  scope: Record<string, unknown>;
}

parentPort?.on('message', (task: Task) => {
  try {
    const run = CPU_ACTIONS[task.action];
    if (!run) throw new Error(`no CPU action ${task.action}`);
    parentPort!.postMessage({ id: task.id, ok: true, value: run(task.config, task.scope) });
  } catch (error) {
    parentPort!.postMessage({ id: task.id, ok: false, message: (error as Error).message ?? String(error) });
  }
});
