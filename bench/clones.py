"""clones: on each engine of --kinds, --clones imports at once of one archive (a container holding --clones-mb MB,
exported with leave_running: true) with cryo.docker.docker_checkpoint_import restore_method auto (the image path
where the engine allows it) against restore_method engine: the wall time until every clone answers (or, on the host
network, until every import returned verified); --repeat times each, the order turning; medians.
"""

import concurrent.futures
import time

from harness import (ALLOCATE, APP_PORT, COUNTER, BenchError, helpers, http_ready, median, ratio, report, say,
                     wait_for)
from importing import allow, clone_name, export, host_port, remove_archive

METHODS = ('auto', 'engine')


def clone_app(megabytes, network):
    """A counter holding M MB in a shell variable of PID 1 that also serves `ready` over HTTP (busybox httpd, in the
    background) - except on the host network, where clones side by side would all listen on one port."""
    serve = '' if network == 'host' else 'echo ready > /www/index.html; httpd -p %d -h /www; ' % APP_PORT
    return ALLOCATE['anon'].format(bytes=megabytes << 20) + '; ' + serve + 'echo allocated; ' + COUNTER


def run(bench):
    rows = bench.on_engines(clone_rows)
    summary = dict(
        benchmark='clones', title='%d clones of one archive at once (%d MB each): the image path against the engine\'s '
                                  'restore' % (bench.options.clones, bench.options.clones_mb),
        baseline='%d cryo.docker.docker_checkpoint_import calls at once (publish: remap) with restore_method engine '
                 '(docker start --checkpoint\'s path through containerd\'s content store), from the first call until '
                 'every clone answers' % bench.options.clones,
        measured='the same with restore_method auto: each clone created with a runtime of its own and restored through '
                 'its image path where the engine allows it (Docker 23 and later)',
        rows=rows, all_verified=all(r.get('verified') for r in rows), all_resumed=all(r.get('resumed') for r in rows),
        notes=['failed on %s: %s' % (row['kind'], row['error']) for row in rows if row.get('error')] + [
            "The source: a counter holding M MB (a shell variable of PID 1) that serves `ready` with busybox httpd on "
            "port %d, published on 127.0.0.1, exported once with docker_checkpoint_export leave_running: true (it "
            "runs on beside its clones). The clones: the module files run directly, one process each, started at "
            "once; each with publish: remap (a free host port of its own). all s: from the start of the first call "
            "until every clone answered its first HTTP request on its port (asked once its call returned). On the "
            "host network (Docker 28.5) the clones cannot all listen on one port: the source only counts, and all s "
            "ends when the last import returned verified." % APP_PORT,
            "engine/auto = engine all s / auto all s (above 1: the image path is faster). import s: the median of "
            "the calls' wall times; unpack s and restore s: the medians of their import_duration (verification, "
            "unpacking, creation, staging) and duration (the restore). An image-path import also prunes the "
            "runtimes of the clones removed before it (one more engine reload). Medians of %d batches each."
            % bench.options.repeat,
            "verified: every import reported verified; resumed: every clone's counter began at the number after the "
            "source's checkpoint (between the source's last number before the export call and its last after it, "
            "plus one; a fresh start would begin at 0)."])
    report(summary, [('kind', 'engine'), ('version', 'version'), ('network', 'network'), ('clones', 'clones'),
                     ('mb', 'MB'), ('auto_method', 'auto method'), ('auto_all_s', 'auto all s'),
                     ('engine_all_s', 'engine all s'), ('engine_vs_auto', 'engine/auto'),
                     ('auto_import_s', 'auto import s'), ('engine_import_s', 'engine import s'),
                     ('auto_unpack_s', 'auto unpack s'), ('engine_unpack_s', 'engine unpack s'),
                     ('auto_restore_s', 'auto restore s'), ('engine_restore_s', 'engine restore s'),
                     ('verified', 'verified'), ('resumed', 'resumed')], rows)
    return summary


def clone_rows(bench, kind):
    facts = bench.engine_facts(kind)
    network = bench.network_mode(facts)
    megabytes = bench.options.clones_mb
    port = helpers.free_port()
    source = bench.container('source', clone_app(megabytes, network), network_mode=network,
                             ports=None if network == 'host' else {APP_PORT: ('127.0.0.1', port)})
    path = None
    row = dict(facts, clones=bench.options.clones, mb=megabytes)
    try:
        wait_for(lambda: bench.counter_lines(source), 120 + megabytes // 8, 0.1, '%s to hold %d MB' % (source, megabytes))
        before = bench.counter_lines(source)[-1]
        path, _exported = export(bench, source, leave_running=True)
        # The checkpoint was taken between these two: a clone goes on from the number after it.
        checkpointed = (before + 1, bench.counter_lines(source)[-1] + 1)
        batches = {method: [] for method in METHODS}
        for rep in range(bench.options.repeat):
            for method in (METHODS if rep % 2 == 0 else METHODS[::-1]):
                say('clones: %s, %d x %d MB, restore_method %s, batch %d of %d'
                    % (kind, bench.options.clones, megabytes, method, rep + 1, bench.options.repeat))
                batches[method].append(clone_batch(bench, path, method, network, checkpointed))
    except BenchError as error:
        say('clones: %s failed: %s' % (kind, error))
        return [dict(row, error=str(error)[-2000:], verified=False, resumed=False)]
    finally:
        bench.remove([source])
        remove_archive(path)
    for method, runs in batches.items():
        row[method + '_method'] = '/'.join(sorted({m for r in runs for m in r['methods']}))
        for key in ('all_s', 'import_s', 'unpack_s', 'restore_s'):
            row['%s_%s' % (method, key)] = median([r[key] for r in runs])
        row[method + '_batches'] = runs
    row.update(engine_vs_auto=ratio(row['engine_all_s'], row['auto_all_s']),
               verified=all(r['verified'] for runs in batches.values() for r in runs),
               resumed=all(r['resumed'] for runs in batches.values() for r in runs))
    return [row]


def clone_batch(bench, path, method, network, checkpointed):
    """--clones imports of the archive at once with this restore_method; each clone removed afterwards."""
    names = [clone_name(bench, 'clone') for _index in range(bench.options.clones)]
    args = dict(path=path, restore_method=method, allow=allow(network))
    if network != 'host':
        args['publish'] = 'remap'

    def one(name):
        result, wall = bench.ansible.module('docker_checkpoint_import', dict(args, container=name))
        if network != 'host':
            clone_port = host_port(result)
            wait_for(lambda: http_ready(clone_port), 30, 0.02, '%s to answer on port %d' % (name, clone_port))
        return result, wall, time.monotonic()

    try:
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
            done = list(pool.map(one, names))
        results = [item[0] for item in done]
        first = [wait_first(bench, name) for name in names]
        return dict(all_s=round(max(item[2] for item in done) - started, 3),
                    import_s=median([item[1] for item in done]), unpack_s=median([r['import_duration'] for r in results]),
                    restore_s=median([r['duration'] for r in results]), methods=[r['method'] for r in results],
                    verified=all(r['verified'] for r in results),
                    resumed=all(checkpointed[0] <= number <= checkpointed[1] for number in first))
    finally:
        bench.remove(names)


def wait_first(bench, name):
    """The first number a clone's counter printed (it prints its log from the restore on)."""
    wait_for(lambda: bench.counter_lines(name), 10, 0.1, 'the counter of %s' % name)
    return bench.counter_lines(name)[0]
