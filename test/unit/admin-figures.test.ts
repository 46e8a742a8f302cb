// The dashboard's process and error figures, from a clock the test holds.
import { afterEach, describe, expect, it } from 'vitest';
import { CpuMeter } from '../../server/admin/process-usage.ts';
import { ERROR_WINDOW_SECONDS, RequestRecorder } from '../../server/admin/recorder.ts';

describe('CpuMeter: CPU time over wall time, in percent of one core', () => {
  it.each<[string, [number, number][], { percent: number; windowSeconds: number }[]]>([
    // [wall ms, cpu µs] samples: the first is taken at construction (process started at 0).
    ['since the start until a second has passed', [[2000, 500_000], [2500, 900_000]], [{ percent: 25, windowSeconds: 2 }]],
    ['then over the last second or more', [[2000, 500_000], [3000, 1_000_000]], [{ percent: 50, windowSeconds: 1 }]],
    ['several threads busy: above 100', [[1000, 0], [3000, 5_000_000]], [{ percent: 250, windowSeconds: 2 }]],
    ['a poll too soon keeps the last reading', [[1000, 0], [2000, 100_000], [2100, 2_000_000]], [{ percent: 10, windowSeconds: 1 }, { percent: 10, windowSeconds: 1 }]],
    ['idle', [[1000, 0], [2000, 0]], [{ percent: 0, windowSeconds: 1 }]],
  ])('%s', (_name, samples, expected) => {
    const queue = samples.map(([at, micros]) => ({ at, micros }));
    const meter = new CpuMeter(() => queue.shift()!, 0);
    expect(expected.map(() => meter.read())).toEqual(expected);
  });
});

describe('RequestRecorder: the error rate is the share of 5xx responses over the last minute', () => {
  let recorder: RequestRecorder | undefined;
  afterEach(() => recorder?.close());

  it('counts responses with a status; 5xx among them; forgets what is older than the window', () => {
    let now = 1_000_000_000;
    recorder = new RequestRecorder(['/a'], () => now);
    expect(recorder.view('/a')!.errors).toEqual({ windowSeconds: ERROR_WINDOW_SECONDS, responses: 0, serverErrors: 0, rate: null });
    recorder.record('/a', 200, 1);
    recorder.record('/a', 503, 1);
    recorder.record('/a', 404, 1);
    recorder.record('/a', 0, 1); // aborted: no status, not a response
    now += 1000;
    recorder.record('/a', 500, 1);
    expect(recorder.view('/a')!.errors).toEqual({ windowSeconds: ERROR_WINDOW_SECONDS, responses: 4, serverErrors: 2, rate: 0.5 });
    now += (ERROR_WINDOW_SECONDS - 1) * 1000; // the first second leaves the window
    expect(recorder.view('/a')!.errors).toMatchObject({ responses: 1, serverErrors: 1, rate: 1 });
    now += 1000;
    expect(recorder.view('/a')!.errors).toMatchObject({ responses: 0, serverErrors: 0, rate: null });
  });
});
