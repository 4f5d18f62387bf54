"""engines: checkpoint and restore time of the counter and of a counter holding --engine-mb MB on each Docker
Engine of the test bed's table (tests/testbed/fleet.py ENGINES, --kinds), started side by side for it.

cryo.docker.docker_checkpoint (each --methods value) then cryo.docker.docker_restore, --repeat times per
workload and engine: the modules' `duration` (medians), VmRSS of PID 1 before and after, the checkpoint size,
the path the checkpoint took, and whether every restore was verified and every counter resumed.
"""

import itertools

from harness import COUNTER, holding_counter, median, report, rss_bytes, say, wait_for


def run(bench):
    kinds = bench.options.kinds
    rows = bench.on_engines(engine_rows)
    megabytes = bench.options.engine_mb
    summary = dict(
        benchmark='engines', title='checkpoint and restore on each Docker Engine of the test bed',
        baseline='the same workloads on every engine (tests/testbed/fleet.py ENGINES: %s)' % ', '.join(kinds),
        measured='cryo.docker.docker_checkpoint then cryo.docker.docker_restore (via %s, keep_checkpoint) of the '
                 'counter and of a counter holding %d MB, the engine time each module reports; medians of %d'
                 % (bench.options.via, megabytes, bench.options.repeat),
        rows=rows, all_verified=all(r['verified'] for r in rows), all_resumed=all(r['resumed'] for r in rows),
        notes=[
            "checkpoint_s / restore_s: medians of the modules' `duration` (checkpoint call until stopped / "
            "restore call until running); *_min_s and *_max_s in the JSON.",
            "method: the path docker_checkpoint took (its `method` result; asked for: %s): runtime = runc "
            "checkpoint with the engine's runc state root, straight into the engine's checkpoint place; engine = "
            "the engine's checkpoint endpoint, through containerd's content store. Restores always go through "
            "the engine." % ', '.join(bench.options.methods),
            "network: the default bridge where the engine restores it; host on engines that cannot restore a "
            "container with a network namespace of its own (Docker 28.0 to 29.x, moby/moby#50750).",
            "rss_mb: VmRSS of PID 1 before the checkpoint (read through the collection's module_utils/_host.py), "
            "rss_after_mb: after the restore. The memory is the process's own (a shell variable of %d MB) and "
            "came back. resumed: the counter went on where it stopped (0, 1, 2 ... no restart)." % megabytes])
    report(summary, [('kind', 'engine'), ('version', 'version'), ('containerd', 'containerd'),
                     ('image_store', 'image store'), ('network', 'network'), ('workload', 'workload'),
                     ('method', 'method'), ('rss_mb', 'rss MB'), ('checkpoint_mb', 'ckpt MB'),
                     ('checkpoint_s', 'ckpt s'),
                     ('restore_s', 'restore s'), ('rss_after_mb', 'rss after'), ('verified', 'verified'),
                     ('resumed', 'resumed')], rows)
    return summary


def engine_rows(bench, kind):
    """The counter and a counter holding --engine-mb MB, each checkpointed and restored --repeat times on
    this Bench's engine (a kind of ENGINES); one row per workload."""
    facts = bench.engine_facts(kind)
    network = bench.network_mode(facts)
    megabytes = bench.options.engine_mb
    mib = float(1 << 20)
    rows = []
    workloads = (('counter', COUNTER), ('%d MB' % megabytes, holding_counter(megabytes)))
    for (workload, command), method in itertools.product(workloads, bench.options.methods):
        results = []
        for rep in range(bench.options.repeat):
            say('engines: %s, %s, method %s, repetition %d of %d'
                % (kind, workload, method, rep + 1, bench.options.repeat))
            results.append(engine_run(bench, workload, command, network, method))
        rows.append(dict(
            facts, workload=workload, method='/'.join(sorted({r['method'] for r in results})),
            rss_mb=round(min(r['rss'] for r in results) / mib, 1),
            rss_after_mb=round(min(r['rss_after'] for r in results) / mib, 1),
            checkpoint_mb=round(median([r['size'] for r in results]) / mib, 1),
            checkpoint_s=median([r['checkpoint_s'] for r in results]),
            checkpoint_min_s=min(r['checkpoint_s'] for r in results),
            checkpoint_max_s=max(r['checkpoint_s'] for r in results),
            restore_s=median([r['restore_s'] for r in results]),
            restore_min_s=min(r['restore_s'] for r in results),
            restore_max_s=max(r['restore_s'] for r in results),
            verified=all(r['verified'] for r in results), resumed=all(r['resumed'] for r in results)))
    return rows


def engine_run(bench, workload, command, network, method):
    """One checkpoint (docker_checkpoint's method) and restore of a new counter container (that may hold
    memory first)."""
    name = bench.container('engine', command, network_mode=network, security_opt=['seccomp=unconfined'])
    try:
        wait_for(lambda: bench.counter_lines(name), 120, 0.1, '%s (%s) to start counting' % (name, workload))
        rss = rss_bytes(bench.pid(name)) or 0
        checkpoint, _wall = bench.ansible.module('docker_checkpoint', dict(container=name, checkpoint='bench',
                                                                           method=method))
        restore, _wall = bench.ansible.module('docker_restore', dict(container=name, checkpoint='bench'))
        return dict(checkpoint_s=checkpoint['duration'], restore_s=restore['duration'], rss=rss,
                    method=checkpoint.get('method') or method,
                    size=checkpoint['checkpoint'].get('size') or 0, verified=restore['verified'],
                    resumed=bool(bench.resumed(name)), rss_after=rss_bytes(bench.pid(name)) or 0)
    finally:
        bench.remove([name])
