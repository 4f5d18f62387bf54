"""overhead: the modules against the docker CLI, on each engine of --kinds. cryo.docker.docker_checkpoint
(method engine and method auto) against `docker checkpoint create` at the smallest --speed-sizes size, and the
slow-start app through cryo.docker.docker_restore to ready against `docker start --checkpoint` to ready
(--repeat times, the order turning with each repetition; medians).
"""

from harness import WARM_UP_SECONDS, ReadyWatch, check, medians, ratio, report, say

# The targets (at most): docker_checkpoint / CLI at the smallest size, docker_restore to ready / CLI start
# --checkpoint to ready.
TARGETS = {'checkpoint': 1.05, 'warm_start': 1.15}


def run(bench):
    rows = bench.on_engines(overhead_rows)
    checks = []
    for row in rows:
        checks.append(check('module/cli checkpoint (method engine) on %s at %d MB' % (row['kind'], row['mb']),
                            row['engine_vs_cli'], TARGETS['checkpoint'], at_most=True))
        checks.append(check('module/cli checkpoint (method auto) on %s at %d MB' % (row['kind'], row['mb']),
                            row['auto_vs_cli'], TARGETS['checkpoint'], at_most=True))
        checks.append(check('docker_restore/start --checkpoint to ready on %s' % row['kind'], row['warm_vs_cli'],
                            TARGETS['warm_start'], at_most=True))
    summary = dict(
        benchmark='overhead', title='the modules against the docker CLI: checkpoint at the smallest size, warm start',
        baseline='`docker -H <engine> checkpoint create` of the same container (until it stopped), and `docker -H '
                 '<engine> start --checkpoint` of the slow-start app (%d s warm-up) until it answers' % WARM_UP_SECONDS,
        measured='cryo.docker.docker_checkpoint (method engine and method auto) and cryo.docker.docker_restore '
                 '(keep_checkpoint) of the same app, the module files run directly (wall time of the process, '
                 'until ready for the restore); medians of %d' % bench.options.repeat,
        rows=rows, checks=checks, all_verified=all(r['verified'] for r in rows),
        all_resumed=all(r['resumed'] for r in rows),
        notes=[
            "checkpoint: a counter holding the smallest --speed-sizes size, checkpointed by the CLI, by the module "
            "with method engine (the CLI's path: the overhead of the module) and with method auto (the runtime path "
            "where it can), each restored by docker_restore before the next; the order turns with each repetition. "
            "engine/cli and auto/cli: module wall / CLI wall (target at most %.2f)." % TARGETS['checkpoint'],
            "warm start: the app checkpointed by docker_checkpoint (method auto) twice once it served; one "
            "checkpoint restored by docker_restore, the other by the CLI, each from the start of the process until "
            "the app answered its first HTTP request (asked only once the process returned, as warm_start does); "
            "the order turns with each repetition. module/cli: docker_restore to ready / CLI to ready (target at "
            "most %.2f); cold s: the app's cold start to ready." % TARGETS['warm_start']])
    report(summary, [('kind', 'engine'), ('version', 'version'), ('network', 'network'), ('mb', 'MB'),
                     ('cli_checkpoint_s', 'cli ckpt s'), ('engine_checkpoint_s', 'module engine s'),
                     ('engine_vs_cli', 'engine/cli'), ('auto_checkpoint_s', 'module auto s'),
                     ('auto_vs_cli', 'auto/cli'), ('cold_s', 'cold s'), ('cli_ready_s', 'cli start ready s'),
                     ('module_ready_s', 'docker_restore ready s'), ('warm_vs_cli', 'module/cli'),
                     ('verified', 'verified'), ('resumed', 'resumed')], rows)
    return summary


def overhead_rows(bench, kind):
    facts = bench.engine_facts(kind)
    network = bench.network_mode(facts)
    megabytes = min(bench.options.speed_sizes)
    runs = []
    for rep in range(bench.options.repeat):
        say('overhead: %s, repetition %d of %d' % (kind, rep + 1, bench.options.repeat))
        runs.append(dict(overhead_run(bench, megabytes, network, rep), **overhead_warm(bench, network, rep)))
    row = dict(facts, mb=megabytes, repeat=len(runs), auto_method='/'.join(sorted({r['auto_method'] for r in runs})),
               verified=all(r['verified'] and r['warm_verified'] for r in runs), resumed=all(r['resumed'] for r in runs),
               runs=runs)
    row.update(medians(runs, ('cli_checkpoint_s', 'engine_checkpoint_s', 'auto_checkpoint_s', 'cold_s',
                              'cli_ready_s', 'module_ready_s', 'module_call_s', 'cli_call_s')))
    row['engine_vs_cli'] = ratio(row['engine_checkpoint_s'], row['cli_checkpoint_s'])
    row['auto_vs_cli'] = ratio(row['auto_checkpoint_s'], row['cli_checkpoint_s'])
    row['warm_vs_cli'] = ratio(row['module_ready_s'], row['cli_ready_s'])
    return [row]


def overhead_run(bench, megabytes, network, turn):
    """One counter holding M MB checkpointed by the CLI, by docker_checkpoint method engine and method auto
    (in an order that turns with `turn`), each restored by docker_restore."""
    name, _rss = bench.hold_and_count(megabytes, network)
    order = ['cli', 'engine', 'auto']
    order = order[turn % 3:] + order[:turn % 3]
    seconds = {}
    verified = True
    try:
        for way in order:
            if way == 'cli':
                seconds[way], _attempts = bench.cli_checkpoint(name, way)
            else:
                result, seconds[way] = bench.ansible.module('docker_checkpoint', dict(container=name, checkpoint=way,
                                                                                      method=way))
                seconds['method_' + way] = result.get('method')
            restore, _wall = bench.ansible.module('docker_restore', dict(container=name, checkpoint=way))
            verified = verified and bool(restore['verified'])
        return dict(cli_checkpoint_s=round(seconds['cli'], 3), engine_checkpoint_s=round(seconds['engine'], 3),
                    auto_checkpoint_s=round(seconds['auto'], 3), auto_method=seconds['method_auto'],
                    verified=verified, resumed=bool(bench.resumed(name)))
    finally:
        bench.remove([name])


def overhead_warm(bench, network, turn):
    """The slow-start app, once it served: docker_restore to ready and CLI start --checkpoint to ready, each
    from a checkpoint docker_checkpoint took (in an order that turns with `turn`)."""
    name, port = bench.app_container(network)
    ready = {}
    try:
        with ReadyWatch(port) as watch:
            bench.engine.start(name)
            cold = watch.wait(WARM_UP_SECONDS + 30)
        for way in (('module', 'cli') if turn % 2 == 0 else ('cli', 'module')):
            bench.ansible.module('docker_checkpoint', dict(container=name, checkpoint=way))
            if way == 'module':
                restore, call = bench.ansible.module('docker_restore', dict(container=name, checkpoint=way,
                                                                            keep_checkpoint=True))
                ready['verified'] = bool(restore['verified'])
            else:
                _out, call = bench.cli('start', '--checkpoint', way, name)
            with ReadyWatch(port) as watch:
                ready[way] = call + watch.wait(30)
            ready[way + '_call'] = call
        return dict(cold_s=round(cold, 3), module_ready_s=round(ready['module'], 3),
                    cli_ready_s=round(ready['cli'], 3), module_call_s=round(ready['module_call'], 3),
                    cli_call_s=round(ready['cli_call'], 3), warm_verified=ready['verified'])
    finally:
        bench.remove([name])
