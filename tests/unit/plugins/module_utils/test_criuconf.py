"""CRIU options per call (_criuconf): runc.conf merged, written, put back exactly; its lock; what a killed run left;
the options a checkpoint records, checked as untrusted input."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _criuconf
from ansible_collections.cryo.docker.plugins.module_utils._common import ModuleError
from ansible_collections.cryo.docker.plugins.module_utils._criuconf import CriuConfig

HOST = b'# Ansible managed\n# Options runc passes to CRIU (role cryo.docker.criu).\nlog-file /var/log/criu/runc-criu.log\n'


def write_host(path, data=HOST, mode=0o640):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as handle:
        handle.write(data)
    os.chmod(path, mode)


def read(path):
    with open(path, 'rb') as handle:
        return handle.read()


# -- runc.conf understood and merged ------------------------------------------------------------

@pytest.mark.parametrize('line, parsed', [
    ('tcp-established', ('tcp_established', True)),
    ('--tcp-established  # comment', ('tcp_established', True)),
    ('no-tcp-established', ('tcp_established', False)),
    ('tcp-close', ('tcp_close', True)),
    ('file-locks', ('file_locks', True)),
    ('no-file-locks', ('file_locks', False)),
    ('ext-unix-sk', ('ext_unix_sk', True)),
    ('link-remap', ('link_remap', True)),
    ('manage-cgroups=full', ('manage_cgroups_mode', 'full')),
    ('manage-cgroups', ('manage_cgroups_mode', 'soft')),
    ('manage-cgroups strict', ('manage_cgroups_mode', 'strict')),
    ('log-file /var/log/criu.log', None),
    ('# tcp-established', None),
    ('', None),
    ('tcp-established-not', None),
    ('no-ext-unix-sk', None),  # CRIU has no such option
])
def test_line_option(line, parsed):
    assert _criuconf.line_option(line) == parsed


def test_effective_last_line_wins():
    text = 'tcp-established\nfile-locks\nno-tcp-established\nmanage-cgroups=full\n'
    assert _criuconf.effective(text) == dict(tcp_established=False, tcp_close=False, file_locks=True,
                                             ext_unix_sk=False, link_remap=False, manage_cgroups_mode='full')
    assert _criuconf.effective(None) == dict(tcp_established=False, tcp_close=False, file_locks=False,
                                             ext_unix_sk=False, link_remap=False, manage_cgroups_mode=None)


def test_merged_keeps_the_hosts_lines_and_adds_the_calls():
    host = 'log-file /var/log/criu.log\n# a comment\nfile-locks\ntcp-established\next-unix-sk\n'
    text = _criuconf.merged(host, dict(tcp_established=True, tcp_close=False, ext_unix_sk=False,
                                       manage_cgroups_mode='full'))
    lines = text.splitlines()
    # The host's lines but those of the call's options, in their order; then the call's.
    assert lines[:3] == ['log-file /var/log/criu.log', '# a comment', 'file-locks']
    assert lines[3].startswith('# cryo.docker: the CRIU options of one call')
    assert lines[4:] == ['tcp-established', 'no-tcp-close', 'manage-cgroups=full']
    assert _criuconf.effective(text) == dict(tcp_established=True, tcp_close=False, file_locks=True,
                                             ext_unix_sk=False, link_remap=False, manage_cgroups_mode='full')


def test_merged_false_turns_off_what_the_host_turns_on():
    text = _criuconf.merged('tcp-established\nfile-locks\n', dict(tcp_established=False, file_locks=False))
    assert _criuconf.effective(text)['tcp_established'] is False and _criuconf.effective(text)['file_locks'] is False
    assert 'no-tcp-established' in text.split() and 'no-file-locks' in text.split()


# -- the call's file, and the host's put back ---------------------------------------------------

def test_options_stand_for_one_call_then_the_hosts_bytes_come_back(criu_conf):
    write_host(criu_conf)
    with CriuConfig(dict(tcp_established=True)) as conf:
        during = read(criu_conf).decode()
        assert conf.rewritten and conf.effective['tcp_established'] is True
        assert during.startswith(HOST.decode()) and 'tcp-established' in during.split()
        assert os.stat(criu_conf).st_mode & 0o777 == 0o640
        record = json.loads(read(criu_conf + '.cryo-host'))
        assert record['pid'] == os.getpid() and record['mode'] == 0o640
    assert read(criu_conf) == HOST
    assert os.stat(criu_conf).st_mode & 0o777 == 0o640
    assert not os.path.exists(criu_conf + '.cryo-host')
    assert sorted(os.listdir(os.path.dirname(criu_conf))) == ['runc.conf']


def test_put_back_when_the_call_fails(criu_conf):
    write_host(criu_conf)
    with pytest.raises(RuntimeError):
        with CriuConfig(dict(file_locks=True)):
            raise RuntimeError('CRIU failed')
    assert read(criu_conf) == HOST and not os.path.exists(criu_conf + '.cryo-host')


def test_a_runc_conf_that_is_a_link_stays_one(criu_conf, tmp_path):
    managed = str(tmp_path / 'managed' / 'runc.conf')
    write_host(managed)
    os.makedirs(os.path.dirname(criu_conf))
    os.symlink(managed, criu_conf)
    with CriuConfig(dict(tcp_established=True)):
        assert os.path.islink(criu_conf) and b'tcp-established' in read(managed)
    assert os.path.islink(criu_conf) and os.readlink(criu_conf) == managed
    assert read(managed) == HOST and not os.path.exists(criu_conf + '.cryo-host')
    conf = CriuConfig(dict(file_locks=True))
    conf.__enter__()
    conf.release()  # killed
    with CriuConfig({}) as after:
        assert after.recovered == 'put back'
    assert os.path.islink(criu_conf) and read(managed) == HOST


def test_no_host_file_is_made_for_the_call_and_removed_after(criu_conf):
    assert not os.path.exists(criu_conf)
    with CriuConfig(dict(tcp_established=True)):
        assert read(criu_conf).split(b'\n')[-2] == b'tcp-established'
    assert not os.path.exists(criu_conf)


def test_options_the_host_has_already_leave_the_file_alone(criu_conf):
    write_host(criu_conf, HOST + b'tcp-established\n')
    before = os.stat(criu_conf)
    with CriuConfig(dict(tcp_established=True)) as conf:
        assert not conf.rewritten and conf.effective['tcp_established'] is True
        assert not os.path.exists(criu_conf + '.cryo-host')
    after = os.stat(criu_conf)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_a_remote_engine_touches_nothing(criu_conf):
    with CriuConfig(dict(tcp_established=True), local=False) as conf:
        assert conf.effective is None and conf.fd is None
    assert not os.path.exists(criu_conf) and not os.path.exists(_criuconf.LOCK_FILE)


# -- the lock -----------------------------------------------------------------------------------

def test_a_call_without_options_waits_for_one_with_options(criu_conf):
    write_host(criu_conf)
    with CriuConfig(dict(tcp_established=True)):
        with pytest.raises(_criuconf.Busy):
            CriuConfig({}, wait=0.3).__enter__()
        with pytest.raises(_criuconf.Busy):
            CriuConfig(dict(file_locks=True), wait=0.3).__enter__()
    with CriuConfig({}, wait=0.3) as conf:
        assert conf.effective['tcp_established'] is False  # never the other call's


def test_calls_without_options_share_and_hold_off_one_with_options(criu_conf):
    write_host(criu_conf)
    with CriuConfig({}), CriuConfig({}, wait=0.3):
        with pytest.raises(_criuconf.Busy):
            CriuConfig(dict(tcp_established=True), wait=0.3).__enter__()
        assert read(criu_conf) == HOST
    with CriuConfig(dict(tcp_established=True), wait=0.3) as conf:
        assert conf.rewritten
    assert read(criu_conf) == HOST


def test_calls_of_one_process_with_the_same_options_share_one_rewrite(criu_conf):
    """The tasks of a batch (threads): the first writes, the others join at once, the last one out puts it back."""
    write_host(criu_conf)
    first, second = CriuConfig(dict(tcp_established=True)), CriuConfig(dict(tcp_established=True), wait=0.3)
    first.__enter__()
    joined = threading.Event()
    leave = threading.Event()
    seen = []

    def other():
        with second:
            seen.append(second.effective['tcp_established'])
            joined.set()
            leave.wait(5)
            seen.append(read(criu_conf))

    thread = threading.Thread(target=other)
    thread.start()
    assert joined.wait(5), 'the second call did not join the first one\'s rewrite'
    first.__exit__(None, None, None)  # the first one out: the second still runs CRIU with the options
    assert b'tcp-established' in read(criu_conf)
    leave.set()
    thread.join(5)
    assert seen[0] is True and b'tcp-established' in seen[1]
    assert read(criu_conf) == HOST and not os.path.exists(criu_conf + '.cryo-host') and _criuconf._SHARED == {}
    with CriuConfig(dict(tcp_established=True)):  # nested in one thread: joined, no deadlock
        with CriuConfig(dict(tcp_established=True), wait=0.3) as inner:
            assert inner.effective['tcp_established'] is True
    assert read(criu_conf) == HOST


def test_calls_of_one_process_with_other_options_wait_as_another_processs_do(criu_conf):
    write_host(criu_conf)
    with CriuConfig(dict(tcp_established=True)):
        with pytest.raises(_criuconf.Busy):
            CriuConfig(dict(file_locks=True), wait=0.3).__enter__()
        with pytest.raises(_criuconf.Busy):
            CriuConfig({}, wait=0.3).__enter__()
    assert _criuconf._SHARED == {}
    with CriuConfig(dict(file_locks=True)) as conf:
        assert conf.effective['file_locks'] is True and conf.effective['tcp_established'] is False
    assert read(criu_conf) == HOST


def test_busy_and_os_errors_become_clear_messages(criu_conf, monkeypatch):
    class Module:
        warnings = []

        def warn(self, text):
            self.warnings.append(text)

    write_host(criu_conf)
    with CriuConfig(dict(tcp_established=True)):
        with pytest.raises(ModuleError) as busy:
            with _criuconf.held(CriuConfig({}, wait=0.2), 'Checkpoint cp1 of container', 'web', Module()):
                pass
    assert 'Checkpoint cp1 of container web was not done' in busy.value.msg
    assert busy.value.details['busy'] is True and criu_conf + '.cryo-host' in busy.value.msg

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, 'Permission denied')

    monkeypatch.setattr(_criuconf, 'write_atomic', refuse)
    with pytest.raises(ModuleError) as denied:
        with _criuconf.held(CriuConfig(dict(file_locks=True)), 'Restore of container', 'web', Module()):
            pass
    assert 'could not be written for the CRIU options of this call' in denied.value.msg
    assert read(criu_conf) == HOST


# -- a run killed in the middle -----------------------------------------------------------------

def test_a_run_that_dies_holding_its_options_leaves_them_to_the_next_run(criu_conf):
    write_host(criu_conf)
    conf = CriuConfig(dict(tcp_established=True))
    conf.__enter__()
    conf.release()  # the process ended here: the kernel dropped its flock, nothing was put back
    assert b'tcp-established' in read(criu_conf) and os.path.exists(criu_conf + '.cryo-host')
    with CriuConfig({}) as after:
        assert after.recovered == 'put back' and after.effective['tcp_established'] is False
        assert read(criu_conf) == HOST
    assert not os.path.exists(criu_conf + '.cryo-host')


def test_a_file_changed_since_the_killed_run_is_kept(criu_conf):
    write_host(criu_conf)
    conf = CriuConfig(dict(tcp_established=True))
    conf.__enter__()
    conf.release()
    write_host(criu_conf, b'log-file /elsewhere.log\nfile-locks\n')  # the criu role ran meanwhile
    with CriuConfig({}) as after:
        assert after.recovered == 'kept'
    assert read(criu_conf) == b'log-file /elsewhere.log\nfile-locks\n'
    assert not os.path.exists(criu_conf + '.cryo-host')


def test_fault_a_process_killed_while_it_holds_its_options(criu_conf, tmp_path):
    """SIGKILL, as a controller's timeout or an OOM kill does it, in the middle of a call: the next call, of
    another process, puts the host's file back first, byte for byte."""
    write_host(criu_conf)
    script = textwrap.dedent('''
        import sys, time
        from ansible_collections.cryo.docker.plugins.module_utils import _criuconf
        _criuconf.CONF, _criuconf.LOCK_FILE = sys.argv[1], sys.argv[2]
        with _criuconf.CriuConfig(dict(tcp_established=True, file_locks=True)):
            print('holding', flush=True)
            time.sleep(60)
    ''')
    child = subprocess.Popen([sys.executable, '-c', script, criu_conf, _criuconf.LOCK_FILE],
                             stdout=subprocess.PIPE, env=dict(os.environ))
    try:
        assert child.stdout.readline().strip() == b'holding'
        assert _criuconf.effective(read(criu_conf).decode())['file_locks'] is True
        with pytest.raises(_criuconf.Busy):  # while it lives, its options stand
            CriuConfig({}, wait=0.3).__enter__()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)
        child.stdout.close()
    assert b'tcp-established' in read(criu_conf), 'the kill came too late to test anything'
    started = time.monotonic()
    with CriuConfig({}) as after:
        assert after.recovered == 'put back'
        assert read(criu_conf) == HOST
    assert time.monotonic() - started < 5
    assert os.stat(criu_conf).st_mode & 0o777 == 0o640 and not os.path.exists(criu_conf + '.cryo-host')


# -- the options a checkpoint records: untrusted input ------------------------------------------

def test_check_recorded_accepts_what_a_checkpoint_records():
    assert _criuconf.check_recorded(None) == {}
    assert _criuconf.check_recorded({}) == {}
    recorded = dict(tcp_established=True, tcp_close=False, file_locks=True, ext_unix_sk=True, link_remap=True,
                    manage_cgroups_mode='strict')
    assert _criuconf.check_recorded(recorded) == recorded


@pytest.mark.parametrize('value, words', [
    (['tcp_established'], 'not an object'),
    ('tcp-established', 'not an object'),
    ({'tcp-established': True}, "name 'tcp-established', which is no CRIU option"),
    ({'exec_cmd': True}, "'exec_cmd'"),
    ({'tcp_established': 'yes'}, "tcp_established is 'yes', not true or false"),
    ({'file_locks': 1}, 'file_locks is 1, not true or false'),
    ({'manage_cgroups_mode': 'props'}, "manage_cgroups_mode is 'props', not one of soft, full, strict, ignore"),
    ({'manage_cgroups_mode': None}, 'manage_cgroups_mode is None'),
    ({'manage_cgroups_mode': 'full\nexec-cmd'}, 'manage_cgroups_mode is'),
])
def test_check_recorded_refuses(value, words):
    with pytest.raises(ValueError) as refused:
        _criuconf.check_recorded(value)
    assert words in str(refused.value)


def test_report_names_each_options_source():
    in_force = dict(tcp_established=True, tcp_close=False, file_locks=True, ext_unix_sk=False, link_remap=False,
                    manage_cgroups_mode='full')
    assert _criuconf.report(in_force, dict(file_locks=True), dict(tcp_established=True)) == dict(
        criu_options=dict(tcp_established=True, file_locks=True, manage_cgroups_mode='full'),
        criu_options_from=dict(tcp_established='checkpoint', file_locks='operator', manage_cgroups_mode='host'))
    assert _criuconf.report(None, dict(file_locks=False), {}) == dict(criu_options={}, criu_options_from={})


def test_established_tcp_hint():
    errors = ['(00.128639) Error (criu/sk-inet.c:200): inet: Connected TCP socket, consider using '
              '--tcp-established option.']
    hint = _criuconf.established_tcp_hint(errors, {})
    assert 'The container has established TCP connections' in hint and 'tcp_established: true' in hint
    assert _criuconf.established_tcp_hint(errors, dict(tcp_established=True)) == ''
    assert _criuconf.established_tcp_hint(['Error (criu/mount.c:1): mnt: no'], {}) == ''


def test_refuse_annotation():
    info = dict(HostConfig=dict(Annotations={'org.criu.config': '/etc/criu/web.conf'}))
    _criuconf.refuse_annotation('Checkpoint cp1 of container', 'web', info, {})  # no options: nothing to refuse
    _criuconf.refuse_annotation('Checkpoint cp1 of container', 'web',
                                dict(HostConfig=dict(Annotations={'org.criu.config': '/etc/criu/runc.conf'})),
                                dict(tcp_established=True))
    with pytest.raises(ModuleError) as refused:
        _criuconf.refuse_annotation('Checkpoint cp1 of container', 'web', info, dict(tcp_established=True))
    assert "org.criu.config='/etc/criu/web.conf'" in refused.value.msg
    assert 'Checkpoint cp1 of container web was not done, and nothing was changed' in refused.value.msg
    with pytest.raises(ModuleError) as empty:
        _criuconf.refuse_annotation('Restore of container', 'web',
                                    dict(HostConfig=dict(Annotations={'org.criu.config': ''})), dict(file_locks=True))
    assert 'no configuration file' in empty.value.msg
