"""Understanding CRIU's output, on lines recorded on this project's test bed."""

import os

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _criu

# /var/log/criu/runc-criu.log after a checkpoint of a host-network container holding a TCP
# connection (CRIU 4.2.1, kernel 6.18), cut to the interesting part.
DUMP_LOG = """\
(00.038425) vdso: symbol __vdso_getcpu at address f00
(00.073436) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted
(00.128639) Error (criu/sk-inet.c:200): inet: Connected TCP socket, consider using --tcp-established option.
(00.128652) Error (criu/cr-dump.c:1545): Dump files (pid: 8076) failed with -1
(00.129142) Error (criu/cr-dump.c:1975): Dumping FAILED.
(00.129500) Error (criu/cgroup.c:1987): cg: cgroupd: recv req error
"""

ENGINE_MESSAGE = ('Cannot checkpoint container lead-tcp: runc did not terminate successfully: exit status 1: '
                  'criu failed: type NOTIFY errno 0 path= /var/run/docker/containerd/daemon/'
                  'io.containerd.runtime.v2.task/moby/99f58c45/criu-dump.log: unknown')


def test_log_errors_keep_the_cause_and_drop_noise():
    errors = _criu.log_errors(DUMP_LOG)
    assert errors[0].endswith('consider using --tcp-established option.')
    assert errors[-1].endswith('Dumping FAILED.')
    assert not any('RLIMIT_NOFILE' in line or 'cgroupd' in line for line in errors)
    assert _criu.quote_errors(errors, 1) == errors[0]


def test_log_path_named_by_the_engine():
    assert _criu.log_path_from_message(ENGINE_MESSAGE) == (
        '/var/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/99f58c45/criu-dump.log')
    assert _criu.log_path_from_message('no log here') is None


def test_failure_log_falls_back_to_the_persistent_log(tmp_path, monkeypatch):
    persistent = tmp_path / 'runc-criu.log'
    persistent.write_text(DUMP_LOG)
    conf = tmp_path / 'runc.conf'
    conf.write_text('# managed\nlog-file %s\ntcp-established\n' % persistent)
    monkeypatch.setattr(_criu, 'RUNC_CONF', str(conf))
    monkeypatch.setattr(_criu.runc_log_file, '__defaults__', (str(conf),))
    path, errors = _criu.failure_log(ENGINE_MESSAGE)
    assert path == str(persistent)
    assert len(errors) == 3


def test_runc_conf():
    options = _criu.parse_runc_conf('# comment\nlog-file /var/log/criu/runc-criu.log\n--tcp-established\n\nfile-locks # x\n')
    assert options == {'log-file': '/var/log/criu/runc-criu.log', 'tcp-established': True, 'file-locks': True}
    # getopt's form, a tab, and the last line winning, as CRIU reads them.
    options = _criu.parse_runc_conf('log-file=/a.log\nmanage-cgroups=full\nverbosity\t4\nlog-file /b.log\n')
    assert options == {'log-file': '/b.log', 'manage-cgroups': 'full', 'verbosity': '4'}


@pytest.mark.parametrize('kernel,minimum', [
    ('6.18.44-fc-v657', '4.2'), ('6.16.0', '4.2'), ('6.15.9', '4.1'), ('6.13.1-arch1', '4.1'),
    ('6.12.30', '2.0'), ('5.10.0-28-amd64', '2.0'), ('garbage', '2.0'),
])
def test_min_version_for_kernel(kernel, minimum):
    assert _criu.min_version_for_kernel(kernel)[0] == minimum


@pytest.mark.parametrize('version,minimum,ok', [
    ('4.2.1', '4.2', True), ('4.2', '4.2.0', True), ('4.1.1', '4.2', False), ('3.17.1', '2.0', True), (None, '2.0', False),
])
def test_version_at_least(version, minimum, ok):
    assert _criu.version_at_least(version, minimum) is ok


def test_parse_version():
    assert _criu.parse_version('Version: 4.2.1\nGitID: v4.2.1\n') == '4.2.1'
    assert _criu.parse_version('criu: command not found') is None


STATS_DUMP = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'counter-stats-dump.img')


def test_stats_of_a_counter_checkpoint():
    """stats-dump that `runc checkpoint` left beside the images of the counter container (Docker 20.10, CRIU 4.2.1)."""
    with open(STATS_DUMP, 'rb') as handle:
        stats = _criu.parse_stats(handle.read())
    assert stats == {'dump': dict(freezing_time=101065, frozen_time=63941, memdump_time=557, memwrite_time=224,
                                  pages_scanned=48, pages_skipped_parent=0, pages_written=34, pages_lazy=0)}
    assert _criu.read_stats(os.path.dirname(STATS_DUMP), 'counter-stats-dump.img') is None  # not a stats name
    assert _criu.read_stats('/nonexistent', 'stats-dump') is None


def test_stats_restore_and_broken_images(tmp_path):
    restore = b'\x12\x08\x08\x05\x18\xe8\x07\x28\x22'  # StatsEntry.restore: compared 5, forking 1000, restored 34
    data = b'\x40\x59\x10\x55\x06\x33\x09\x57' + bytes([len(restore), 0, 0, 0]) + restore
    (tmp_path / 'stats-restore').write_bytes(data)
    assert _criu.read_stats(str(tmp_path), 'stats-restore') == dict(
        pages_compared=5, pages_skipped_cow=0, forking_time=1000, restore_time=0, pages_restored=34)
    (tmp_path / 'stats-dump').write_bytes(data[:14])  # truncated
    assert _criu.read_stats(str(tmp_path), 'stats-dump') is None
    with pytest.raises(ValueError):
        _criu.image_entry(b'\x00' * 11)
