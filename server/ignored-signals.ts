/**
 * Signals a gunicorn or Apache operator may send that interpool has no use for, caught
 * so that they do nothing but say so. Left to Node:
 * - SIGUSR1 opens Node's inspector on 127.0.0.1:9229, without authentication: any local
 *   user could then run code as the server's user. gunicorn's logrotate recipes send it
 *   (reopen the log files); an app could send it to its own process. A listener of our
 *   own replaces the inspector's (to debug, start node with --inspect).
 * - SIGUSR2 (gunicorn: start a new binary) ends the process; SIGTTIN and SIGTTOU
 *   (gunicorn: one worker more or less) stop it, as job control does.
 * - SIGALRM and SIGVTALRM end the process: an app's C code that arms a timer (a Python
 *   app's signal.alarm() is ignored in its interpreter) would take every app with it.
 */
import type { Logger } from 'pino';

const WHY: Readonly<Partial<Record<NodeJS.Signals, string>>> = {
  SIGUSR1: 'the log goes to stdout, with nothing to reopen, and Node\'s inspector is not opened on a signal (start node with --inspect to debug)',
  SIGUSR2: 'SIGHUP reloads every app without downtime; to upgrade interpool itself, start a new server and stop this one',
  SIGTTIN: 'each app has its --workers interpreters (--min-workers lets a pool grow under load)',
  SIGTTOU: 'each app has its --workers interpreters (--min-workers and --idle-timeout let a pool shrink when idle)',
  SIGALRM: 'an app\'s timer is not the server\'s (--timeout ends a request that runs too long)',
  SIGVTALRM: 'an app\'s timer is not the server\'s (--timeout ends a request that runs too long)',
};

export function ignoreUnusedSignals(logger: Logger): void {
  for (const [signal, why] of Object.entries(WHY) as [NodeJS.Signals, string][]) {
    process.on(signal, () => logger.warn({ signal }, `${signal} ignored: ${why}`));
  }
}
