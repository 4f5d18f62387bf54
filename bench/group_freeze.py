"""group_freeze: an application's checkpoint as one point in time, against its members checkpointed one by one.

For each case of --group-counts (N members, NxM: each holding M MB), --repeat times: N counters checkpointed
(leave_running, so both modes run on the same containers) first one by one - one cryo.docker.docker_checkpoint
call per member, the baseline - then as one group (one call, containers with group: true).

- span_s: how far apart in time the members' checkpoints may be: one by one, from the first call's start to the
  last one's end (the members are saved at different instants within it); as a group, 0 by construction (every
  member frozen before the first dump, none running until all are dumped).
- frozen_s: how long the application did not run: one by one, the longest any member was frozen (CRIU's
  frozen_time); as a group, RV(group.frozen_seconds) (first freeze to last thaw).
- group_frozen_vs_span = group frozen_s / one-by-one span_s: the price of consistency (below 1: the group is
  frozen for less time than the one-by-one checkpoint takes to cover every member).
"""

import time

from harness import ALLOCATE, COUNTER, check, median, ratio, report, say, wait_for

TARGETS = {'group_frozen_vs_span': (3, 0, 1.0, True)}


def run(bench):
    rows = []
    for count, megabytes in bench.options.group_counts:
        megabytes = megabytes or 0
        command = (ALLOCATE['anon'].format(bytes=megabytes << 20) + '; ' if megabytes else '') + COUNTER
        names = [bench.container('group', command) for _index in range(count)]
        try:
            for name in names:
                wait_for(lambda n=name: len(bench.counter_lines(n)) >= 2, 20 + megabytes // 10, 0.1,
                         'the counter of %s' % name)
            runs = []
            for attempt in range(bench.options.repeat):
                say('group_freeze: %d members of %d MB, run %d' % (count, megabytes, attempt + 1))
                runs.append(one_run(bench, names, attempt))
            resumed = all(bench.resumed(name) for name in names)
        finally:
            bench.remove(names)
        row = dict(n=count, mb=megabytes, resumed=resumed, repeats=len(runs))
        for key in ('one_by_one_span_s', 'one_by_one_frozen_s', 'group_frozen_s', 'group_call_s'):
            row[key] = median([run_[key] for run_ in runs])
        row['group_frozen_vs_span'] = ratio(row['group_frozen_s'], row['one_by_one_span_s'])
        row['group_frozen_vs_member'] = ratio(row['group_frozen_s'], row['one_by_one_frozen_s'])
        rows.append(row)
    checks = []
    for key, (n, mb, target, at_most) in TARGETS.items():
        found = [row[key] for row in rows if (row['n'], row['mb']) == (n, mb)]
        checks.append(check('%s at %dx%d MB' % (key, n, mb), found[0] if found else None, target, at_most))
    summary = dict(
        benchmark='group_freeze', title='an application checkpointed as one point in time (group) against its '
                                        'members one by one',
        baseline='one by one: one cryo.docker.docker_checkpoint call per member (leave_running), in turn',
        measured='group: one cryo.docker.docker_checkpoint call, containers with group: true (leave_running)',
        results=rows, rows=rows, checks=checks, all_resumed=all(row['resumed'] for row in rows),
        notes=['span_s: one by one, from the first call\'s start to the last call\'s end - the members\' '
               'checkpoints are that far apart at most; a group\'s are one instant.',
               'frozen_s: one by one, the longest a member was frozen (CRIU\'s frozen_time of each dump); group, '
               'group.frozen_seconds: first member frozen to last thawed.',
               'Medians of --repeat runs; resumed: every counter went on without a restart afterwards.'])
    report(summary, [('n', 'N'), ('mb', 'MB'), ('one_by_one_span_s', 'one-by-one span s'),
                     ('one_by_one_frozen_s', 'one-by-one frozen s (longest member)'),
                     ('group_frozen_s', 'group frozen s'), ('group_call_s', 'group call s'),
                     ('group_frozen_vs_span', 'group frozen / span'),
                     ('group_frozen_vs_member', 'group frozen / member frozen'), ('resumed', 'resumed')], rows)
    return summary


def one_run(bench, names, attempt):
    frozen = []
    started = time.monotonic()
    for name in names:
        result, _wall = bench.ansible.module('docker_checkpoint', dict(
            container=name, checkpoint='one-%d' % attempt, leave_running=True))
        frozen.append(((result.get('stats') or {}).get('frozen_time') or 0) / 1e6)
    span = time.monotonic() - started
    result, wall = bench.ansible.module('docker_checkpoint', dict(
        containers=names, group=True, checkpoint='group-%d' % attempt, leave_running=True))
    return dict(one_by_one_span_s=round(span, 3), one_by_one_frozen_s=round(max(frozen), 3),
                group_frozen_s=result['group']['frozen_seconds'], group_call_s=round(wall, 3))
