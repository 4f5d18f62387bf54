"""checkpoint_preflight on this machine: ready as it is, and injected faults that it must name.

Faults: (a) a second Docker Engine of our own (tests/testbed/fleet.py's Engine), started with
experimental off, then fixed by following the remedy; (b) the old Debian CRIU 3.17.1 instead of
4.2.1, then the newer one; (c) live-restore on that second engine, with a container that outlived
an engine restart.
"""

import json

import pytest

from fleet import Engine
from helpers import IMAGE, run_module, run_playbook

NEW_CRIU = '/usr/local/sbin/criu'
OLD_CRIU = '/usr/sbin/criu'


def by_name(result, name):
    found = [c for c in result['checks'] if c['name'] == name]
    assert len(found) == 1, (name, result['checks'])
    return found[0]


def failing(result):
    return [c for c in result['checks'] if c['status'] == 'fail']


@pytest.fixture
def second_engine():
    """A dockerd of our own (own data root, exec root, socket /run/cryo-preflight.sock, pidfile,
    daemon.json and bridge), not started yet: configure() it, then up()."""
    with Engine('cryo-preflight') as engine:
        yield engine


def test_this_machine_is_ready(make_container, engine):
    name = make_container(name='preflight-cr', restart_policy={'Name': 'always'}, tty=True)
    result = run_module('checkpoint_preflight', {'containers': [name]})
    assert not result.get('failed'), result
    assert result['ready'] is True, failing(result)
    assert result['changed'] is False
    facts = result['facts']
    assert facts['criu_path'] == NEW_CRIU and facts['criu_version'] == '4.2.1'
    assert facts['experimental'] is True and facts['kernel_config'] == '/proc/config.gz'
    assert facts['engine_version'] == engine.version()['Version']
    with open('/run/docker.pid') as handle:
        assert facts['dockerd_pid'] == int(handle.read().strip())
    assert facts['running_containers'] == 1 and facts['memory_bytes'] > 0
    for name_ in ('kernel config', 'criu installed', 'criu check', 'criu version', 'engine reachable',
                  'engine experimental', 'engine version', 'containerd version', 'live-restore', 'free space'):
        assert by_name(result, name_)['status'] == 'pass', by_name(result, name_)
    # This kernel has no CONFIG_MEM_SOFT_DIRTY: a warning, not a failure.
    assert by_name(result, 'kernel CONFIG_MEM_SOFT_DIRTY')['status'] == 'warn'
    assert by_name(result, 'container %s: running' % name)['status'] == 'pass'
    assert 'held' in by_name(result, 'container %s: restart policy' % name)['detail']
    assert by_name(result, 'container %s: tty' % name)['status'] == 'pass'


def test_check_mode_reports_the_same():
    result = run_module('checkpoint_preflight', {}, check=True)
    assert result['ready'] is True and result['changed'] is False
    assert by_name(result, 'criu check')['status'] == 'pass'


def test_missing_and_stopped_containers_fail(make_container):
    stopped = make_container(name='preflight-stopped', start=False)
    result = run_module('checkpoint_preflight', {'containers': [stopped, 'preflight-does-not-exist']})
    assert result['ready'] is False
    item = by_name(result, 'container %s: running' % stopped)
    assert item['status'] == 'fail' and 'docker start' in item['remedy']
    missing = by_name(result, 'container preflight-does-not-exist')
    assert missing['status'] == 'fail' and 'does not exist' in missing['detail']


def test_relative_checkpoint_dir_is_refused():
    result = run_module('checkpoint_preflight', {'checkpoint_dir': 'relative/dir'})
    assert result['failed'] and 'absolute path' in result['msg']


def test_unreachable_engine_fails_with_remedy():
    result = run_module('checkpoint_preflight', {'docker_host': 'unix:///run/cryo-preflight-nothing.sock'})
    assert not result.get('failed'), result
    assert result['ready'] is False
    item = by_name(result, 'engine reachable')
    assert item['status'] == 'fail' and 'cryo.docker.engine' in item['remedy']


def test_old_criu_fails_then_the_newer_one_passes():
    result = run_module('checkpoint_preflight', {'criu_path': OLD_CRIU})
    assert result['ready'] is False
    assert result['facts']['criu_version'] == '3.17.1'
    version = by_name(result, 'criu version')
    assert version['status'] == 'fail'
    assert '3.17.1' in version['detail'] and '>= 4.2' in version['detail']
    assert 'CRIU >= 4.2' in version['remedy'] and 'cryo.docker.criu' in version['remedy']
    check = by_name(result, 'criu check')
    assert check['status'] == 'fail' and 'vDSO' in check['detail']

    # The remedy: CRIU >= 4.2, first on runc's PATH. That one is at /usr/local/sbin here.
    result = run_module('checkpoint_preflight', {'criu_path': NEW_CRIU})
    assert by_name(result, 'criu version')['status'] == 'pass'
    assert by_name(result, 'criu check')['status'] == 'pass'
    assert result['ready'] is True, failing(result)
    result = run_module('checkpoint_preflight', {})
    assert result['facts']['criu_path'] == NEW_CRIU
    assert by_name(result, 'criu version')['status'] == 'pass'


def test_experimental_off_fails_then_the_remedy_fixes_it(second_engine):
    second_engine.configure(experimental=False)
    pid = second_engine.up()
    docker_host = second_engine.docker_host
    result = run_module('checkpoint_preflight', {'docker_host': docker_host})
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
    result = run_module('checkpoint_preflight', {'docker_host': docker_host})
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
    result = run_module('checkpoint_preflight', {'docker_host': docker_host, 'containers': [name]})
    assert by_name(result, 'live-restore')['status'] == 'pass'
    assert result['ready'] is True, failing(result)

    second_engine.restart()  # live-restore keeps the container running through this
    assert client.inspect_container(name)['State']['Running']
    result = run_module('checkpoint_preflight', {'docker_host': docker_host, 'containers': [name]})
    host = by_name(result, 'live-restore')
    assert host['status'] == 'warn' and name in host['detail']
    item = by_name(result, 'container %s: engine restart' % name)
    assert item['status'] == 'fail' and 'docker restart %s' % name in item['remedy']
    assert result['ready'] is False

    # Follow the remedy: restart the container under the current engine.
    client.restart(name, timeout=1)
    result = run_module('checkpoint_preflight', {'docker_host': docker_host, 'containers': [name]})
    assert by_name(result, 'live-restore')['status'] == 'pass'
    assert not [c for c in result['checks'] if c['name'].endswith('engine restart')]
    assert result['ready'] is True, failing(result)


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
    assert 'PASS  criu version' in out and 'WARN  kernel CONFIG_MEM_SOFT_DIRTY' in out
    assert 'remedy: Nothing to do for plain checkpoints' in out
    assert result['ready'] is True
    assert result['facts']['criu_version'] == '4.2.1'
    assert {c['name'] for c in result['checks']} >= {'kernel config', 'criu check', 'engine experimental'}


def test_role_fails_with_the_remedies_when_not_ready(tmp_path):
    rc, out, result = run_role(tmp_path, preflight_criu_path=OLD_CRIU)
    assert rc != 0
    assert result is None  # the play stopped in the role
    assert 'NOT READY for checkpoint and restore' in out
    assert 'This host is not ready for checkpoint and restore (2 check(s) with status fail' in out
    assert '[criu version] CRIU 3.17.1' in out and 'Remedy: Install CRIU >= 4.2' in out


def test_role_fail_on_never_only_reports(tmp_path):
    rc, out, result = run_role(tmp_path, preflight_criu_path=OLD_CRIU, preflight_fail_on='never')
    assert rc == 0, out
    assert result['ready'] is False
    assert [c['name'] for c in result['checks'] if c['status'] == 'fail'] == ['criu check', 'criu version']


def test_role_fail_on_warn_stops_on_the_soft_dirty_warning(tmp_path):
    rc, out, result = run_role(tmp_path, preflight_fail_on='warn')
    assert rc != 0 and result is None
    assert 'status fail or warn' in out and '[kernel CONFIG_MEM_SOFT_DIRTY]' in out


def test_role_rejects_an_unknown_fail_on(tmp_path):
    rc, out, _result = run_role(tmp_path, preflight_fail_on='sometimes')
    assert rc != 0
    assert 'preflight_fail_on' in out and 'sometimes' in out
