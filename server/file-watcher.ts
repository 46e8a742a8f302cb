/**
 * --reload, for development: watch each app's directory (and its --python-path
 * directories) and reload that app when a file changes. Changes arriving together are
 * debounced into one reload; editor droppings and caches are ignored.
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { ApplicationGroup } from './pool/application-group.ts';

const IGNORED = /(^|\/)(__pycache__|node_modules|\.git)(\/|$)|\.(pyc|swp|swx|tmp)$|~$/;
const DEBOUNCE_MS = 200;

export function watchForReload(groups: readonly ApplicationGroup[], logger: Logger): () => void {
  const watchers: FSWatcher[] = [];
  for (const group of groups) {
    const dirs = [dirname(group.config.file), ...((group.config.settings.pythonPath as string[] | undefined) ?? [])];
    let timer: NodeJS.Timeout | undefined;
    const changed = (file: string) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        logger.info({ app: group.config.name, file }, 'file changed: reloading');
        void group.reload();
      }, DEBOUNCE_MS);
    };
    for (const dir of dirs) {
      try {
        const watcher = watch(dir, { recursive: true }, (_event, file) => {
          if (file && !IGNORED.test(file)) changed(`${dir}/${file}`);
        });
        watcher.unref();
        watchers.push(watcher);
      } catch (error) {
        logger.warn({ app: group.config.name, dir, err: error }, 'cannot watch this directory for --reload');
      }
    }
  }
  return () => { for (const watcher of watchers) watcher.close(); };
}
