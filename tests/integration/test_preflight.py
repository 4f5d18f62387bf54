"""checkpoint_preflight on this machine: ready as it is, and injected faults that it must name.

Faults: (a) a second Docker Engine of our own (tests/testbed/fleet.py's Engine), started with
experimental off, then fixed by following the remedy; (b) every CRIU this host has, the one Docker
runs and any other (Debian's 3.17.1 is too old for a kernel >= 6.13, and fails); (c) live-restore on
that second engine, with a container that outlived an engine restart.

What the host has (kernel, its configuration, cgroup version, the CRIU binaries and their versions)
is read at run time by tests/testbed/host_truth.py, not by the module's code, and the expected
checks follow from it: the tests hold on the lab machines (6.18, cgroup v1, no soft-dirty) as on
Debian 12 or 13.
"""

import datetime
import json
import os
import subprocess
import time

import pytest

import host_truth as truth
from fleet import Engine, managed_containerd_pid
from helpers import IMAGE, call_module, run_playbook

# The options checkpoint_preflight warns about when the kernel lacks them (the rest are required).
OPTIONAL_OPTIONS = ('CONFIG_USER_NS', 'CONFIG_MEM_SOFT_DIRTY')


def parse_timestamp(text):
    """Seconds since the epoch of the engine's '2026-12-07T08:10:11.123456789Z'."""
    return datetime.datetime.strptime(text[:19], '%Y-%m-%dT%H:%M:%S').replace(
        tzinfo=datetime.timezone.utc).timestamp() + float('0.' + (text[20:-1] or '0'))


def by_name(result, name):
    found = [c for c in result['checks'] if c['name'] == name]
    assert len(found) == 1, (name, result['checks'])
    return found[0]


def failing(result):
    return [c for c in result['checks'] if c['status'] == 'fail']


def expected_kernel_checks():
    """{check name: status} of the kernel checks, from the kernel's configuration as this host has it."""
    options, _source = truth.kernel_config()
    if options is None:
        return {'kernel config': 'warn'}
    expected = {'kernel config': 'pass'}
    expected.update(('kernel %s' % option, 'warn') for option in OPTIONAL_OPTIONS if not truth.kernel_has(option))
    return expected


def expected_criu_checks(path):
    """{check name: status or statuses} of a CRIU: its `criu check` run here, its version against the kernel."""
    return {'criu installed': 'pass',
            'criu check': ('pass', 'warn') if truth.criu_check_passes(path) else ('fail',),
            'criu version': 'pass' if truth.criu_fit(path) else 'fail'}


def assert_checks(result, expected):
    for name, status in expected.items():
        got = by_name(result, name)['status']
        assert got in (status if isinstance(status, tuple) else (status,)), (name, by_name(result, name))


@pytest.fixture(scope='module')
def criu_fault():
    """A CRIU fault this host can show: a criu too old for its kernel when it has one (Debian 12's 3.17.1
    on a kernel >= 6.13), else a criu_path that is no file. {path, failing: [check names], lines: [...]},
    lines being what the role's failure must print."""
    stale = truth.criu_too_old()
    if stale:
        path, version = stale
        failing_ = ['criu version'] + ([] if truth.criu_check_passes(path) else ['criu check'])
        return dict(path=path, failing=sorted(failing_),
                    lines=['[criu version] CRIU %s' % version, 'Remedy: Install CRIU >= %s' % truth.criu_needed()])
    path = '/nonexistent/cryo-test/criu'
    return dict(path=path, failing=['criu installed'],
                lines=['[criu installed] criu_path %s is not an executable file' % path, 'Remedy: Point criu_path'])


@pytest.fixture
def second_engine():
    """A dockerd of our own (own data root, exec root, socket /run/cryo-preflight.sock, pidfile,
    daemon.json and bridge), not started yet: configure() it, then up()."""
    with Engine('cryo-preflight') as engine:
        yield engine


def test_this_machine_is_ready(make_container, engine):
    name = make_container(name='preflight-cr', restart_policy={'Name': 'always'}, tty=True)
    result = call_module('checkpoint_preflight', {'containers': [name]})
    assert not result.get('failed'), result
    assert result['ready'] is True, failing(result)
    assert result['changed'] is False
    facts = result['facts']
    criu = truth.criu_of_docker()
    assert facts['criu_path'] == criu and facts['criu_version'] == truth.criu_version(criu)
    assert facts['criu_search_path'] == truth.dockerd_path()
    assert facts['kernel_release'] == truth.kernel_release()
    assert facts['criu_min_version'] == truth.criu_needed()
    assert facts['kernel_config'] == truth.kernel_config()[1]
    assert facts['cgroup_version'] == truth.cgroup_version()
    assert facts['experimental'] is True
    assert facts['engine_version'] == engine.version()['Version']
    with open('/run/docker.pid') as handle:
        assert facts['dockerd_pid'] == int(handle.read().strip())
    assert facts['running_containers'] == 1 and facts['memory_bytes'] > 0
    for name_ in ('engine reachable', 'engine experimental', 'engine version', 'containerd version',
                  'live-restore', 'free space'):
        assert by_name(result, name_)['status'] == 'pass', by_name(result, name_)
    # The kernel's options as its configuration has them: an optional one missing (the lab kernel has no
    # CONFIG_MEM_SOFT_DIRTY) is a warning, not a failure; and no warning about an option it has.
    kernel = expected_kernel_checks()
    assert_checks(result, kernel)
    assert {c['name'] for c in result['checks'] if c['name'].startswith('kernel ')} == set(kernel)
    assert_checks(result, expected_criu_checks(criu))
    assert by_name(result, 'container %s: running' % name)['status'] == 'pass'
    assert 'held' in by_name(result, 'container %s: restart policy' % name)['detail']
    assert by_name(result, 'container %s: tty' % name)['status'] == 'pass'
    # containerd's temporary directory: the containerd dockerd started, the file system findmnt names.
    tmpdir = facts['containerd_tmpdir']
    assert tmpdir['containerd_pid'] == managed_containerd_pid('/var/run/docker') and tmpdir['managed'] is True
    assert tmpdir['exists'] is True and tmpdir['fstype'] == findmnt(tmpdir['path'], 'FSTYPE')
    assert tmpdir['mount_point'] == findmnt(tmpdir['path'], 'TARGET')
    assert by_name(result, 'containerd tmpdir')['status'] in (('warn', 'pass') if tmpdir['fstype'] == 'tmpfs'
                                                              else ('pass',))


def findmnt(path, column):
    """What util-linux says of the file system holding path (another reading than the module's)."""
    return subprocess.run(['findmnt', '--noheadings', '--output', column, '--target', path], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_check_mode_reports_the_same():
    result = call_module('checkpoint_preflight', {}, check=True)
    assert result['ready'] is True and result['changed'] is False
    assert by_name(result, 'criu check')['status'] == 'pass'


def test_missing_and_stopped_containers_fail(make_container):
    stopped = make_container(name='preflight-stopped', start=False)
    result = call_module('checkpoint_preflight', {'containers': [stopped, 'preflight-does-not-exist']})
    assert result['ready'] is False
    item = by_name(result, 'container %s: running' % stopped)
    assert item['status'] == 'fail' and 'docker start' in item['remedy']
    missing = by_name(result, 'container preflight-does-not-exist')
    assert missing['status'] == 'fail' and 'does not exist' in missing['detail']


def test_relative_checkpoint_dir_is_refused():
    result = call_module('checkpoint_preflight', {'checkpoint_dir': 'relative/dir'})
    assert result['failed'] and 'absolute path' in result['msg']


def test_unreachable_engine_fails_with_remedy():
    result = call_module('checkpoint_preflight', {'docker_host': 'unix:///run/cryo-preflight-nothing.sock'})
    assert not result.get('failed'), result
    assert result['ready'] is False
    item = by_name(result, 'engine reachable')
    assert item['status'] == 'fail' and 'cryo.docker.engine' in item['remedy']


def test_every_criu_of_this_host_is_judged_by_its_version_and_its_check():
    """Each criu binary here (Debian's 3.17.1 fails on a kernel >= 6.13, the one from `make host` passes),
    then the one first on dockerd's PATH chosen by the module itself."""
    binaries = truth.criu_binaries()
    assert binaries, 'no criu on this host: run `make host`'
    needed = truth.criu_needed()
    for path, version in binaries.items():
        result = call_module('checkpoint_preflight', {'criu_path': path})
        assert result['facts']['criu_version'] == version, (path, result['facts'])
        assert result['facts']['criu_min_version'] == needed
        assert_checks(result, expected_criu_checks(path))
        item = by_name(result, 'criu version')
        if item['status'] == 'fail':
            # The remedy names the CRIU this kernel needs and the role that builds it.
            assert version in item['detail'] and '>= %s' % needed in item['detail'], item
            assert 'CRIU >= %s' % needed in item['remedy'] and 'cryo.docker.criu' in item['remedy'], item
        check = by_name(result, 'criu check')
        if check['status'] == 'fail':
            # CRIU's own reason, as it printed it here.
            errors = [line.strip() for line in truth.criu_check(path)[1].splitlines() if line.startswith('Error')]
            assert any(error in check['detail'] for error in errors) or not errors, (check, errors)
        fit = truth.criu_fit(path) and truth.criu_check_passes(path)
        assert result['ready'] is fit, (path, failing(result))

    # Without criu_path: the one runc runs, first on dockerd's PATH (the remedy of an old one: put the newer first).
    result = call_module('checkpoint_preflight', {})
    assert result['facts']['criu_path'] == truth.criu_of_docker()
    assert_checks(result, expected_criu_checks(truth.criu_of_docker()))


def test_experimental_off_fails_then_the_remedy_fixes_it(second_engine):
    second_engine.configure(experimental=False)
    pid = second_engine.up()
    docker_host = second_engine.docker_host
    result = call_module('checkpoint_preflight', {'docker_host': docker_host})
    assert not result.get('failed'), result
    assert result['facts']['dockerd_pid'] == pid
    assert result['facts']['experimental'] is False
    assert result['facts']['data_root'] == second_engine.data_root
    assert result['ready'] is False
    item = by_name(result, 'engine experimental')
    assert item['status'] == 'fail'
    assert 'cryo.docker.engine' in item['remedy'] and '"experimental": true' in item['remedy']
    assert [c['name'] for c in failing(result)] == ['engine experimental']

    # Follow the remedy: "experimental": true in the engine's daemon.json, restart dockerd.
    second_engine.configure(experimental=True)
    new_pid = second_engine.restart()
    result = call_module('checkpoint_preflight', {'docker_host': docker_host})
    assert result['facts']['dockerd_pid'] == new_pid != pid
    assert by_name(result, 'engine experimental')['status'] == 'pass'
    assert result['ready'] is True, failing(result)


def test_live_restore_names_containers_that_outlived_the_engine(second_engine):
    second_engine.configure(experimental=True, **{'live-restore': True})
    second_engine.up()
    docker_host = second_engine.docker_host
    client = second_engine.client(timeout=30)
    second_engine.load_image()
    name = 'preflight-lr'
    client.create_container(IMAGE, ['/bin/sh', '-c', 'while true; do sleep 1; done'], name=name,
                            host_config=client.create_host_config(network_mode='none'))
    client.start(name)
    result = call_module('checkpoint_preflight', {'docker_host': docker_host, 'containers': [name]})
    assert by_name(result, 'live-restore')['status'] == 'pass'
    assert result['ready'] is True, failing(result)

    # The check compares the container's start with the engine's (whole seconds, 1 s of slack): the container
    # must have started more than that before the restart, which a module call of 0.7 s does not give.
    started = client.inspect_container(name)['State']['StartedAt']
    while time.time() - parse_timestamp(started) < 2.5:
        time.sleep(0.1)
    second_engine.restart()  # live-restore keeps the container running through this
    assert client.inspect_container(name)['State']['Running']
    result = call_module('checkpoint_preflight', {'docker_host': docker_host, 'containers': [name]})
    host = by_name(result, 'live-restore')
    assert host['status'] == 'warn' and name in host['detail']
    item = by_name(result, 'container %s: engine restart' % name)
    assert item['status'] == 'fail' and 'docker restart %s' % name in item['remedy']
    assert result['ready'] is False

    # Follow the remedy: restart the container under the current engine.
    client.restart(name, timeout=1)
    result = call_module('checkpoint_preflight', {'docker_host': docker_host, 'containers': [name]})
    assert by_name(result, 'live-restore')['status'] == 'pass'
    assert not [c for c in result['checks'] if c['name'].endswith('engine restart')]
    assert result['ready'] is True, failing(result)


def test_a_tmpfs_too_small_for_containerd_warns_and_the_restore_through_it_fails(second_engine, monkeypatch):
    """containerd unpacks a checkpoint to restore it in $TMPDIR of its environment, which the containerd dockerd
    starts inherits: here a tmpfs of 1 MiB, smaller than the container. Preflight warns; the restore the warning
    foretells fails for want of room, and a checkpoint through the engine (CRIU writes there) too."""
    tmpdir = os.path.join(second_engine.base, 'tmpfs')  # below its base: remove() unmounts it
    os.makedirs(tmpdir, mode=0o700, exist_ok=True)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'cryo-preflight-tmpfs', tmpdir], check=True)
    second_engine.configure(experimental=True)
    monkeypatch.setenv('TMPDIR', tmpdir)  # Engine.start() gives dockerd this process's environment
    second_engine.up()
    monkeypatch.delenv('TMPDIR')
    docker_host = second_engine.docker_host
    client = second_engine.client(timeout=30)
    second_engine.load_image()
    name = 'preflight-tmpdir'
    # About 4 MB resident: a shell variable of 4 MB.
    client.create_container(IMAGE, ['/bin/sh', '-c', 'x=$(head -c 4000000 /dev/zero | tr "\\0" a); '
                                    'while true; do sleep 1; done'], name=name,
                            host_config=client.create_host_config(network_mode='none'))
    client.start(name)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = call_module('checkpoint_preflight', {'docker_host': docker_host, 'containers': [name]})
        if result['facts']['memory_bytes'] > 4000000:
            break
        time.sleep(0.5)
    facts = result['facts']['containerd_tmpdir']
    assert facts['containerd_pid'] == second_engine.containerd_pid() and facts['managed'] is True
    assert (facts['path'], facts['set_by'], facts['fstype'], facts['mount_point'], facts['size']) == (
        tmpdir, 'TMPDIR', 'tmpfs', tmpdir, 1024 * 1024)
    item = by_name(result, 'containerd tmpdir')
    assert item['status'] == 'warn' and result['ready'] is True, item
    assert '%s, the largest running container counted' % name in item['detail']
    assert 'its restore would fill the tmpfs' in item['detail'] and 'engine_containerd_tmpdir' in item['remedy']

    # What it foretells. The engine's checkpoint: CRIU writes the images in containerd's temporary directory.
    taken = call_module('docker_checkpoint', {'docker_host': docker_host, 'container': name, 'checkpoint': 'cp1',
                                              'method': 'engine', 'leave_running': True})
    assert taken['failed'] and 'no space left on device' in json.dumps(taken).lower(), taken
    assert client.inspect_container(name)['State']['Running']
    # The runtime path writes them on disk; the restore through the engine unpacks them in the tmpfs.
    taken = call_module('docker_checkpoint', {'docker_host': docker_host, 'container': name, 'checkpoint': 'cp2',
                                              'method': 'runtime'})
    assert not taken['failed'], taken
    restored = call_module('docker_restore', {'docker_host': docker_host, 'container': name, 'checkpoint': 'cp2',
                                              'method': 'engine'})
    assert restored['failed'] and 'no space left on device' in json.dumps(restored).lower(), restored


# -- the role --------------------------------------------------------------------------------

PLAY = """\
- name: Preflight
  hosts: localhost
  gather_facts: false
  roles:
    - role: cryo.docker.preflight
  tasks:
    - name: Hand the result to the test
      ansible.builtin.copy:
        content: "{{ preflight_result | to_json }}"
        dest: "%s"
        mode: "0600"
"""


def run_role(tmp_path, **variables):
    """ansible-playbook with the preflight role; (rc, output, preflight_result or None)."""
    result_file = tmp_path / 'result.json'
    proc = run_playbook(PLAY % result_file, extra_vars=variables)
    result = json.loads(result_file.read_text()) if result_file.exists() else None
    return proc.returncode, proc.stdout + proc.stderr, result


def test_role_prints_the_table_and_sets_the_result(tmp_path):
    rc, out, result = run_role(tmp_path)
    assert rc == 0, out
    assert 'READY for checkpoint and restore' in out
    assert 'PASS  criu version' in out
    for name, status in expected_kernel_checks().items():
        assert '%s  %s' % (status.upper(), name) in out, (name, status)
    if 'warn' in expected_kernel_checks().values():
        assert 'remedy: Nothing to do for plain checkpoints' in out
    assert result['ready'] is True
    assert result['facts']['criu_version'] == truth.criu_version(truth.criu_of_docker())
    assert {c['name'] for c in result['checks']} >= {'kernel config', 'criu check', 'engine experimental'}


def test_role_fails_with_the_remedies_when_not_ready(tmp_path, criu_fault):
    rc, out, result = run_role(tmp_path, preflight_criu_path=criu_fault['path'])
    assert rc != 0
    assert result is None  # the play stopped in the role
    assert 'NOT READY for checkpoint and restore' in out
    assert ('This host is not ready for checkpoint and restore (%d check(s) with status fail'
            % len(criu_fault['failing'])) in out
    for line in criu_fault['lines']:
        assert line in out, (line, out)


def test_role_fail_on_never_only_reports(tmp_path, criu_fault):
    rc, out, result = run_role(tmp_path, preflight_criu_path=criu_fault['path'], preflight_fail_on='never')
    assert rc == 0, out
    assert result['ready'] is False
    assert sorted(c['name'] for c in result['checks'] if c['status'] == 'fail') == criu_fault['failing']


def test_role_fail_on_warn_stops_on_a_warning(tmp_path):
    """The lab kernel has no CONFIG_MEM_SOFT_DIRTY, a warning: fail_on warn stops on it. A host without a
    warning passes (what warns is judged by the tests above; here, what the role does with it)."""
    rc, out, result = run_role(tmp_path, preflight_fail_on='never')
    assert rc == 0, out
    warnings = [c['name'] for c in result['checks'] if c['status'] == 'warn']
    assert set(name for name, status in expected_kernel_checks().items() if status == 'warn') <= set(warnings)
    (tmp_path / 'warn').mkdir()
    rc, out, result = run_role(tmp_path / 'warn', preflight_fail_on='warn')
    if not warnings:
        assert rc == 0 and result['ready'] is True, out
        return
    assert rc != 0 and result is None
    assert 'status fail or warn' in out
    for name in warnings:
        assert '[%s]' % name in out, (name, out)


def test_role_rejects_an_unknown_fail_on(tmp_path):
    rc, out, _result = run_role(tmp_path, preflight_fail_on='sometimes')
    assert rc != 0
    assert 'preflight_fail_on' in out and 'sometimes' in out
