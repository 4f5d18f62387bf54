"""warm_container: on each engine of --kinds, the slow-start app of warm_start (5 s of warm-up, then httpd) as a warm
container - exported once it served and imported on the same engine with cryo.docker.docker_checkpoint_import
warm: true, so that every plain start begins at that checkpoint - from `docker start` until its first HTTP answer,
against a cold start of the same app until its first answer (--repeat times each; medians).
"""

import time

from harness import APP_PORT, WARM_UP_SECONDS, BenchError, ReadyWatch, check, http_ready, judge, median, ratio, report, say, wait_for
from importing import allow, clone_name, export, remove_archive, stop

# The target: warm start to ready / cold start to ready, at most.
TARGET = 0.1


def run(bench):
    rows = bench.on_engines(warm_rows)
    checks = [check('warm/cold start to ready on %s' % row['kind'], row.get('warm_vs_cold'), TARGET, at_most=True)
              for row in rows if not row.get('refused')]
    summary = dict(
        benchmark='warm_container', title='a warm container (slow-start app, %d s warm-up) from `docker start` to '
                                          'ready' % WARM_UP_SECONDS,
        baseline='cold start: the engine\'s start of the created app until its first HTTP answer (a request every '
                 '20 ms)',
        measured='the same app imported with cryo.docker.docker_checkpoint_import warm: true from an archive '
                 'docker_checkpoint_export wrote once it served: the engine\'s start (POST /containers/{id}/start, as '
                 '`docker start`) until its first HTTP answer',
        rows=rows, checks=checks, all_verified=all(r.get('verified') for r in rows if not r.get('refused')),
        notes=['refused on %s: %s' % (row['kind'], row['refusal']) for row in rows if row.get('refused')] + [
            "Cold: the app container started %d times (killed in between), each from the start request until its "
            "first answer (requests every 20 ms from the start). Warm: the imported container killed and started %d "
            "times; warm s = the start call (until the engine says it runs: the shim restored it from the golden "
            "checkpoint) + the time from its return to the first answer (ready after s; asked only once the call "
            "returned, as warm_start does). Medians." % (bench.options.repeat, bench.options.repeat),
            "warm/cold = warm s / cold s (target at most %.1f). import s: the warm import's wall time (verification, "
            "unpacking, creation, the first restore). verified: the import was verified and no warm start printed "
            "`warming up` (a fresh start would)." % TARGET])
    report(summary, [('kind', 'engine'), ('version', 'version'), ('network', 'network'), ('method', 'method'),
                     ('cold_s', 'cold s'), ('warm_s', 'warm s'), ('warm_call_s', 'start call s'),
                     ('ready_after_s', 'ready after s'), ('warm_vs_cold', 'warm/cold'), ('met', 'met'),
                     ('import_s', 'import s'), ('import_restore_s', 'import restore s'), ('verified', 'verified'),
                     ('refused', 'refused')], rows)
    return summary


def warm_rows(bench, kind):
    facts = bench.engine_facts(kind)
    network = bench.network_mode(facts)
    app, port = bench.app_container(network)
    warm = clone_name(bench, 'warmed')
    row = dict(facts)
    try:
        cold = []
        for rep in range(bench.options.repeat):
            say('warm_container: %s, cold start %d of %d' % (kind, rep + 1, bench.options.repeat))
            if rep:
                stop(bench, app)
            with ReadyWatch(port) as watch:
                bench.engine.start(app)
                cold.append(round(watch.wait(WARM_UP_SECONDS + 30), 3))
        row.update(cold_s=median(cold), cold_runs=cold)
        path, _exported = export(bench, app)
        bench.remove([app])
        try:
            imported, import_wall = bench.ansible.module('docker_checkpoint_import', dict(
                path=path, container=warm, warm=True, allow=allow(network),
                published_ports=['127.0.0.1:%d:%d' % (port, APP_PORT)] if network != 'host' else []))
        except BenchError as error:
            say('warm_container: %s: %s' % (kind, error))
            return [dict(row, refused=True, refusal=str(error)[-1000:])]
        finally:
            remove_archive(path)
        wait_for(lambda: http_ready(port), 30, 0.05, '%s to serve after its import' % warm)
        row.update(method=imported['method'], import_s=round(import_wall, 3), import_restore_s=imported['duration'],
                   runtime=imported['container'].get('runtime'), warm=imported['container'].get('warm'))
        runs = []
        for rep in range(bench.options.repeat):
            say('warm_container: %s, warm start %d of %d' % (kind, rep + 1, bench.options.repeat))
            stop(bench, warm)
            started = time.monotonic()
            bench.engine.start(warm)
            call = time.monotonic() - started
            with ReadyWatch(port) as watch:
                after = watch.wait(30)
            runs.append(dict(warm_s=round(call + after, 3), warm_call_s=round(call, 3), ready_after_s=round(after, 3)))
        row.update({key: median([r[key] for r in runs]) for key in ('warm_s', 'warm_call_s', 'ready_after_s')})
        row.update(warm_runs=runs, warm_vs_cold=ratio(row['warm_s'], row['cold_s']),
                   verified=bool(imported['verified']) and 'warming up' not in bench.logs(warm))
        row['met'] = judge(row['warm_vs_cold'], TARGET, at_most=True)
        return [row]
    finally:
        bench.remove([app, warm])
