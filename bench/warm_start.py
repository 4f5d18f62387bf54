"""warm_start: cold start of a slow-start app to ready, against docker_restore to ready.

The app (harness.SLOW_APP): busybox sh "warming up" for 5 s, then httpd serves `ready`. Baseline: the engine's
start of the created container until its first HTTP answer (a request every 20 ms). Measured:
cryo.docker.docker_restore (keep_checkpoint) of a checkpoint cryo.docker.docker_checkpoint took once it served,
from the start of the module call until the app answered; --repeat times, medians.
"""

from harness import WARM_UP_SECONDS, BenchError, ReadyWatch, http_ready, median, ratio, report, say


def run(bench):
    rows = []
    for rep in range(bench.options.repeat):
        say('warm_start: repetition %d of %d' % (rep + 1, bench.options.repeat))
        name, port = bench.app_container()
        try:
            with ReadyWatch(port) as watch:
                bench.engine.start(name)
                cold = watch.wait(WARM_UP_SECONDS + 30)
            checkpoint, checkpoint_wall = bench.ansible.module(
                'docker_checkpoint', dict(container=name, checkpoint='warm'))
            if http_ready(port):
                raise BenchError('%s still serves after its checkpoint' % name)
            # Probing only once the call returned: requests while the container is down leave the
            # host's ARP entry for its address INCOMPLETE, which delays the first answer by up to 1 s.
            restore, restore_wall = bench.ansible.module(
                'docker_restore', dict(container=name, checkpoint='warm', keep_checkpoint=True))
            with ReadyWatch(port) as watch:
                after_call = watch.wait(30)
            warm = restore_wall + after_call
            rows.append(dict(
                repetition=rep + 1, cold_s=round(cold, 3), restore_s=round(warm, 3),
                call_s=round(restore_wall, 3), engine_restore_s=restore['duration'],
                ready_after_call_s=round(after_call, 3), verified=restore['verified'],
                checkpoint_call_s=round(checkpoint_wall, 3), checkpoint_bytes=checkpoint['checkpoint'].get('size'),
                ratio=ratio(cold, warm), ratio_engine=ratio(cold, restore['duration'])))
        finally:
            bench.remove([name])
    cold = median([r['cold_s'] for r in rows])
    warm = median([r['restore_s'] for r in rows])
    engine = median([r['engine_restore_s'] for r in rows])
    summary = dict(
        benchmark='warm_start', title='slow-start app (%d s warm-up, then httpd) to ready' % WARM_UP_SECONDS,
        baseline='cold start: engine start of the created container until it serves (HTTP request every 20 ms)',
        measured='cryo.docker.docker_restore (via %s, keep_checkpoint) from a checkpoint taken once it served, '
                 'until it serves' % bench.options.via,
        repeat=bench.options.repeat, cold_s=cold, restore_s=warm, ratio=ratio(cold, warm),
        engine_restore_s=engine, ratio_engine=ratio(cold, engine),
        all_verified=all(r['verified'] for r in rows), rows=rows,
        notes=['restore_s: from the start of the module call (%s) until it returned and the app answered its first '
               'HTTP request (ready_after_call_s in the JSON). Requests are sent only once the call returned: '
               'requests while the container is down leave the host\'s ARP entry for its address INCOMPLETE, and the '
               'first answer then comes up to 1 s (the ARP retransmit time) after the container runs again.'
               % ('a Python process running the module file' if bench.options.via == 'module' else
                  'ansible-playbook with the one task, from its start'),
               'engine_restore_s: the restore request until the engine reports the container running, as the '
               'module reports it; ratio_engine = cold_s / engine_restore_s.',
               'Medians over %d repetitions; container creation is not timed in either case.' % bench.options.repeat])
    report(summary, [('repetition', '#'), ('cold_s', 'cold s'), ('restore_s', 'restore s'), ('call_s', 'call s'),
                     ('engine_restore_s', 'engine s'), ('verified', 'verified'), ('checkpoint_bytes', 'ckpt bytes'),
                     ('ratio', 'cold/restore'), ('ratio_engine', 'cold/engine')], rows)
    return summary
