"""freeze_window: N counters (--counts; NxM: N counters holding M MB each) frozen and resumed, one
cryo.docker.docker_checkpoint/docker_restore call after the other against the maintenance role's batch calls.

Baseline (sequential): a playbook with one docker_checkpoint task looping over the containers, then one
docker_restore loop. Measured (concurrent): the cryo.docker.maintenance role with maintenance_action none (one
docker_checkpoint call with containers, then one docker_restore call). The windows are the summed durations of
each phase's tasks from ansible-core's junit callback; the outage comes from the engine's events.
"""

import json
import os
import re
import tempfile
import time
import uuid
from xml.etree import ElementTree

from harness import ALLOCATE, COUNTER, BenchError, check, ratio, report, say, wait_for

from ansible_collections.cryo.docker.plugins.module_utils._lifecycle import default_parallel

# One task looping over the containers (TASK and MODULE filled in below).
LOOP_TASK = """
    - name: TASK
      cryo.docker.MODULE:
        docker_host: "{{ bench_docker_host }}"
        container: "{{ item }}"
        checkpoint: "{{ bench_checkpoint }}"
      loop: "{{ bench_containers }}"
"""
SEQUENTIAL_PLAYBOOK = """
- name: Freeze and resume the containers one after the other
  hosts: localhost
  gather_facts: false
  tasks:""" + ''.join(LOOP_TASK.replace('TASK', task).replace('MODULE', module) for task, module in (
    ('Checkpoint the containers one by one', 'docker_checkpoint'), ('Restore the containers one by one', 'docker_restore')))

ROLE_PLAYBOOK = """
- name: Freeze and resume the containers with the maintenance role
  hosts: localhost
  gather_facts: false
  roles:
    - role: cryo.docker.maintenance
"""

# junit test cases (task file, task name) that make up each phase.
PHASES = {
    'sequential': {
        'freeze': [('', 'Checkpoint the containers one by one')],
        'restore': [('', 'Restore the containers one by one')],
    },
    # The role: one docker_checkpoint call with containers; one docker_restore call per fallback (one here).
    'concurrent': {
        'freeze': [('/tasks/checkpoint', 'Checkpoint the containers')],
        'restore': [('/tasks/restore', 'Restore the containers')],
    },
}

# The targets: result key: (N, MB, target, at most).
TARGETS = {
    'freeze_ratio': (8, 0, 1.7, False),
    'blackout_vs_sequential': (20, 0, 0.3, True),
}


def run(bench):
    rows = []
    by_case = {}
    for count, megabytes in bench.options.counts:
        megabytes = bench.options.freeze_mb if megabytes is None else megabytes
        for mode in ('sequential', 'concurrent'):
            say('freeze_window: %s, %d containers of %d MB' % (mode, count, megabytes))
            row = freeze_run(bench, mode, count, megabytes)
            rows.append(row)
            by_case.setdefault((count, megabytes), {})[mode] = row
    results = []
    for (count, megabytes), pair in sorted(by_case.items()):
        seq, conc = pair['sequential'], pair['concurrent']
        result = dict(n=count, mb=megabytes, sequential_freeze_s=seq['freeze_s'], concurrent_freeze_s=conc['freeze_s'],
                      freeze_ratio=ratio(seq['freeze_s'], conc['freeze_s']),
                      sequential_restore_s=seq['restore_s'], concurrent_restore_s=conc['restore_s'],
                      restore_ratio=ratio(seq['restore_s'], conc['restore_s']),
                      sequential_blackout_s=seq['blackout_s'], concurrent_blackout_s=conc['blackout_s'],
                      blackout_vs_sequential=ratio(conc['blackout_s'], seq['blackout_s']),
                      sequential_outage_s=seq['outage_s'], concurrent_outage_s=conc['outage_s'],
                      outage_vs_sequential=ratio(conc['outage_s'], seq['outage_s']))
        results.append(result)
    checks = []
    for key, (n, mb, target, at_most) in TARGETS.items():
        found = [r[key] for r in results if (r['n'], r['mb']) == (n, mb)]
        checks.append(check('%s at %dx%d MB' % (key, n, mb), found[0] if found else None, target, at_most))
    for row in rows:
        pair = by_case[(row['n'], row['mb'])]
        row['freeze_ratio'] = ratio(pair['sequential']['freeze_s'], row['freeze_s'])
        row['restore_ratio'] = ratio(pair['sequential']['restore_s'], row['restore_s'])
        row['blackout_vs_seq'] = ratio(row['blackout_s'], pair['sequential']['blackout_s'])
        row['outage_vs_seq'] = ratio(row['outage_s'], pair['sequential']['outage_s'])
    summary = dict(
        benchmark='freeze_window', title='freeze and restore window against the number of counter containers '
                                         '(NxM: N counters each holding M MB)',
        cases=['%dx%d' % case for case in sorted(by_case)],
        baseline='sequential: one cryo.docker.docker_checkpoint task looping over the containers (no async), '
                 'then one cryo.docker.docker_restore loop, through ansible-playbook',
        measured='concurrent: role cryo.docker.maintenance (maintenance_action: none) - one docker_checkpoint '
                 'call with containers (parallel: %s), then one docker_restore call with containers'
                 % (bench.options.parallel or "the module's default, twice the host's CPUs and at least 4: %d "
                    "here" % default_parallel()),
        results=results, rows=rows, all_resumed=all(r['resumed'] for r in rows),
        checks=checks,
        notes=['freeze_s / restore_s: summed durations of the phase\'s tasks from ansible-core\'s junit callback '
               '(task start to last result; the milliseconds between two tasks are not counted). The role\'s '
               'preflight, manifest writes and checks are outside the phases and in playbook_s only.',
               'ratio = sequential / concurrent (above 1: the concurrent window is shorter).',
               'blackout_s = freeze_s + restore_s (checkpoint and restore, the action excluded); blackout_vs_seq = '
               'this / sequential (below 1: the blackout is shorter). Per container, from its checkpoint start to '
               'its restore finish without the time between the phases, the longest of them is this within the '
               'engine time of one checkpoint and one restore: the first container is checkpointed when the '
               'freeze phase starts, the last restored when the restore phase ends.',
               'outage_s: from the engine\'s events, the first container stopping at its checkpoint (die) to '
               'the last running again (start); for the role it also holds what runs between the phases with '
               'maintenance_action none (manifest writes, the engine check and preflight again, the network '
               'holders). outage_longest_s: the longest one container was down.',
               'engine_*: the `duration` each module reported (checkpoint call until the container stopped; '
               'restore call until running): concurrent checkpoints share the CPUs (%d here).' % (os.cpu_count() or 0),
               'resumed: every counter continued from where it was (0, 1, 2 ... no restart) after the run.'])
    report(summary, [('n', 'N'), ('mb', 'MB'), ('mode', 'mode'), ('freeze_s', 'freeze s'), ('freeze_ratio', 'seq/this'),
                     ('restore_s', 'restore s'), ('restore_ratio', 'seq/this'),
                     ('blackout_s', 'blackout s'), ('blackout_vs_seq', 'this/seq'),
                     ('outage_s', 'outage s'), ('outage_vs_seq', 'this/seq'), ('outage_longest_s', 'longest s'),
                     ('engine_freeze_max_s', 'engine ckpt max s'), ('engine_restore_max_s', 'engine rst max s'),
                     ('playbook_s', 'playbook s'), ('resumed', 'resumed')], rows)
    return summary


def freeze_run(bench, mode, count, megabytes):
    command = (ALLOCATE['anon'].format(bytes=megabytes << 20) + '; ' if megabytes else '') + COUNTER
    names = [bench.container('freeze', command) for _index in range(count)]
    try:
        for name in names:
            wait_for(lambda n=name: len(bench.counter_lines(n)) >= 2, 20 + megabytes // 10, 0.1, 'the counter of %s' % name)
        tmp = tempfile.mkdtemp(prefix='%s-%d-' % (mode, count), dir=bench.workdir)
        junit = os.path.join(tmp, 'junit')
        checkpoint = 'bench-%s' % uuid.uuid4().hex[:8]
        if mode == 'sequential':
            extra = dict(bench_docker_host=bench.options.docker_host, bench_containers=names, bench_checkpoint=checkpoint)
            text = SEQUENTIAL_PLAYBOOK
        else:
            extra = dict(maintenance_docker_host=bench.options.docker_host, maintenance_containers=names,
                         maintenance_action='none', maintenance_run_id=checkpoint.replace('bench-', ''),
                         maintenance_checkpoint=checkpoint, maintenance_state_dir=os.path.join(tmp, 'state'))
            if bench.options.parallel:
                extra['maintenance_parallel'] = bench.options.parallel
            text = ROLE_PLAYBOOK
        since = int(time.time())
        started = time.monotonic()
        proc = bench.ansible.playbook(text, extra, env=dict(
            ANSIBLE_CALLBACKS_ENABLED='ansible.builtin.junit', JUNIT_OUTPUT_DIR=junit, JUNIT_TASK_CLASS='true',
            JUNIT_HIDE_TASK_ARGUMENTS='true'))
        total = time.monotonic() - started
        until = int(time.time()) + 2  # whole seconds: the events of the last one are in
        if proc.returncode != 0:
            raise BenchError('the %s playbook failed (rc %d):\n%s' % (mode, proc.returncode, (proc.stdout + proc.stderr)[-3000:]))
        phases, tasks, cases = junit_phases(junit, mode)
        if mode == 'sequential':
            freeze_each = module_durations(cases, 'Checkpoint the containers one by one')
            restore_each = module_durations(cases, 'Restore the containers one by one')
        else:
            with open(os.path.join(tmp, 'state', 'manifest.json'), encoding='utf-8') as handle:
                manifest = json.load(handle)
            freeze_each = [c.get('checkpoint_seconds') for c in manifest['containers']]
            restore_each = [c.get('restore_seconds') for c in manifest['containers']]
        outage, longest = engine_outage(bench, names, since, until)
        resumed = all(bench.resumed(name) for name in names)
        return dict(mode=mode, n=count, mb=megabytes, freeze_s=phases['freeze'], restore_s=phases['restore'],
                    blackout_s=round(phases['freeze'] + phases['restore'], 3), outage_s=outage,
                    outage_longest_s=longest, playbook_s=round(total, 3), engine_freeze_max_s=max(freeze_each or [None], key=lambda v: v or 0),
                    engine_freeze_sum_s=round(sum(v for v in freeze_each if v), 3),
                    engine_restore_max_s=max(restore_each or [None], key=lambda v: v or 0), resumed=resumed,
                    tasks=tasks)
    finally:
        bench.remove(names)


def junit_phases(junit_dir, mode):
    """Seconds per phase from the junit report: the sum of the phase's task durations."""
    cases = []
    for name in os.listdir(junit_dir):
        tree = ElementTree.parse(os.path.join(junit_dir, name))
        for case in tree.iter('testcase'):
            task = re.sub(r'^\[[^]]*\] [^:]*: (?:[^:]* : )?', '', case.get('name', ''))
            cases.append((case.get('classname', ''), task.strip(), float(case.get('time', 0)), case))
    out = {}
    tasks = {}
    for phase, parts in PHASES[mode].items():
        total = 0.0
        for task_file, task in parts:
            found = [c for c in cases if c[1] == task and c[0].endswith(task_file)]
            if not found:
                raise BenchError('the junit report has no task %r (%s)' % (task, task_file))
            seconds = sum(c[2] for c in found)
            tasks[task] = round(seconds, 3)
            total += seconds
        out[phase] = round(total, 3)
    return out, tasks, cases


def module_durations(cases, task):
    """The `duration` each loop item of a task reported (junit keeps the task result as system-out)."""
    for _file, name, _seconds, case in cases:
        if name != task:
            continue
        out = case.find('system-out')
        try:
            result = json.loads(out.text) if out is not None and out.text else {}
        except ValueError:
            return []
        return [item.get('duration') for item in result.get('results', []) if item.get('duration') is not None]
    return []


def engine_outage(bench, names, since, until):
    """From the engine's events: seconds from the first container stopping (`die`, the checkpoint) to the last
    one running again (`start`, the restore), and the longest time one container was down."""
    down, up = {}, {}
    for event in bench.engine.events(since=since, until=until, decode=True,
                                     filters={'type': 'container', 'container': names}):
        name = (event.get('Actor') or {}).get('Attributes', {}).get('name')
        when = event.get('timeNano', 0) / 1e9
        if event.get('Action') == 'die':
            down.setdefault(name, when)
        elif event.get('Action') == 'start' and name in down:
            up[name] = when
    if not down or set(up) != set(down):
        return None, None
    return (round(max(up.values()) - min(down.values()), 3),
            round(max(up[name] - down[name] for name in down), 3))
