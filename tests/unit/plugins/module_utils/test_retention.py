"""_retention.choose: which of the collection's checkpoints the rules remove, oldest first, never a protected one."""

from ansible_collections.cryo.docker.plugins.module_utils._retention import choose

A, B = 'a' * 64, 'b' * 64


def entry(name, minute, size=100, container_id=A, here=True, taken=False, protected=None):
    return dict(name=name, container='web' if container_id == A else 'db', container_id=container_id,
                directory='/nonexistent/%s/%s' % (container_id[:4], name), size=size,
                created='2026-12-07T10:%02d:00+00:00' % minute, here=here, taken=taken,
                protected='just taken' if taken else protected)


def names(removals):
    return [(found['name'], rule) for found, rule in removals]


def test_keep_last_keeps_the_newest_and_removes_the_rest_oldest_first():
    entries = [entry('cp%d' % i, i) for i in range(1, 5)] + [entry('cp5', 5, taken=True)]
    removals, unmet = choose(entries, [A], keep_last=2)
    assert names(removals) == [('cp1', 'keep_last'), ('cp2', 'keep_last'), ('cp3', 'keep_last')]
    assert unmet == []


def test_the_checkpoint_just_taken_counts_newest_whatever_its_recorded_time():
    entries = [entry('later', 30), entry('new', 1, taken=True)]  # a clock set back: the new one still stays
    assert names(choose(entries, [A], keep_last=1)[0]) == [('later', 'keep_last')]


def test_a_protected_checkpoint_stays_and_counts():
    entries = [entry('old', 1, protected='the golden checkpoint of warm container web'), entry('mid', 2),
               entry('new', 3, taken=True)]
    assert names(choose(entries, [A], keep_last=1)[0]) == [('mid', 'keep_last')]
    assert choose(entries, [A], keep_last=2) == ([], [])


def test_keep_last_and_max_size_look_at_the_checkpointed_container_here_only():
    entries = [entry('a1', 1), entry('a2', 2, here=False), entry('b1', 0, container_id=B), entry('a3', 3, taken=True)]
    assert names(choose(entries, [A], keep_last=1, max_size=50)[0]) == [('a1', 'keep_last')]


def test_max_size_removes_the_oldest_until_the_rest_fits():
    entries = [entry('a1', 1, size=300), entry('a2', 2, size=300), entry('a3', 3, size=300), entry('a4', 4, taken=True)]
    removals, unmet = choose(entries, [A], max_size=650)
    assert names(removals) == [('a1', 'max_size'), ('a2', 'max_size')]
    assert unmet == []


def test_a_cap_that_cannot_be_met_says_what_must_stay():
    entries = [entry('gold', 1, size=500, protected='the golden checkpoint of warm container web'),
               entry('a2', 2, size=500), entry('a3', 3, size=500, taken=True)]
    removals, unmet = choose(entries, [A], max_size=600)
    assert names(removals) == [('a2', 'max_size')]
    assert unmet == ['max_size 600.00 Bytes of container web is not met: its checkpoints take 1000.00 Bytes, and '
                     'those left must stay (web/a3: just taken; web/gold: the golden checkpoint of warm container '
                     'web).']


def test_the_host_cap_removes_any_container_s_oldest_after_the_container_rules():
    entries = [entry('a1', 1, size=400), entry('a2', 5, size=400, taken=True), entry('b1', 2, size=400, container_id=B),
               entry('b2', 3, size=400, container_id=B, protected='container db is exited and resumes from it'),
               entry('b3', 4, size=400, container_id=B)]
    removals, unmet = choose(entries, [A], keep_last=5, host_max_size=900)
    assert names(removals) == [('a1', 'host_max_size'), ('b1', 'host_max_size'), ('b3', 'host_max_size')]
    assert unmet == []
    removals, unmet = choose(entries, [A], host_max_size=500)
    assert len(unmet) == 1 and unmet[0].startswith('host_max_size 500.00 Bytes of the host is not met: its '
                                                   'checkpoints take 800.00 Bytes')


def test_sizes_not_known_count_nothing():
    entries = [entry('a1', 1, size=None), entry('a2', 2, size=None, taken=True)]
    assert choose(entries, [A], max_size=1, host_max_size=1) == ([], [])
