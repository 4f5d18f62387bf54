"""cryo.docker.criu_install end to end on recorded command outputs: what it runs, changes and says."""

import hashlib
import json
import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.cryo.docker.plugins.module_utils import _criu_install as ci
from ansible_collections.cryo.docker.plugins.module_utils import _host
from ansible_collections.cryo.docker.plugins.modules import criu_install

KERNEL = '6.18.44-fc-v657'
DPKG_3171 = (0, 'install ok installed\t3.17.1-2+deb12u2\n', '')
POLICY_3171 = (0, 'criu:\n  Installed: 3.17.1-2+deb12u2\n  Candidate: 3.17.1-2+deb12u2\n  Version table:\n', '')
POLICY_421 = (0, 'criu:\n  Installed: (none)\n  Candidate: 4.2.1-1\n  Version table:\n', '')
CHECK_GOOD = (0, 'Looks good.\n', '')
CHECK_BAD = (1, '', 'Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n'
                    'Error (criu/crtools.c:260): Could not initialize kernel features detection.\n')


class Host:
    """A host seen through run_command: answers by (program basename, args...), records every call."""

    def __init__(self, tmp_path, answers):
        self.tmp_path = tmp_path
        self.answers = answers
        self.calls = []

    def run_command(self, args, **kwargs):
        self.calls.append(list(args))
        key = tuple([os.path.basename(args[0])] + list(args[1:]))
        full = tuple(args)
        for candidate in (full, key, key[:3], key[:2]):
            if candidate in self.answers:
                return self.answers[candidate]
        raise AssertionError('unexpected command %r' % (args,))

    def ran(self, program):
        return [call for call in self.calls if os.path.basename(call[0]) == program]


def debian_host(tmp_path, monkeypatch, make_criu):
    """A Debian 12 host on kernel 6.18: Debian's broken 3.17.1 installed, dockerd's PATH in tmp_path (also for
    test_bad_input.py)."""
    system = tmp_path / 'usr/sbin'
    local = tmp_path / 'usr/local/sbin'
    package_binary = make_criu(system)
    local.mkdir(parents=True)
    search_path = '%s:%s' % (local, system)
    answers = {
        ('dpkg-query', '-W', '-f=${Status}\t${Version}\n', 'criu'): DPKG_3171,
        ('apt-cache', 'policy', 'criu'): POLICY_3171,
        (package_binary, '--version'): (0, 'Version: 3.17.1\n', ''),
        (package_binary, 'check'): CHECK_BAD,
    }
    fake = Host(tmp_path, answers)
    fake.package_binary = package_binary
    fake.local = local
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda self, args, **kw: fake.run_command(args, **kw))
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path',
                        lambda self, name, required=False, opt_dirs=None: '/usr/bin/' + name
                        if name in ('apt-get', 'apt-cache', 'dpkg-query', 'make') else None)
    monkeypatch.setattr(_host.Host, 'kernel_release', lambda self: KERNEL)
    monkeypatch.setattr(_host.Host, 'search_path',
                        lambda self, docker_host=None: (search_path, 'the running dockerd (pid 1)'))
    monkeypatch.setattr(ci.CriuHost, 'os_release', lambda self: dict(id='debian', pretty_name='Debian 12'))
    monkeypatch.setattr(criu_install, 'PACKAGE_BINARY', package_binary)
    ansible_warnings._global_warnings.clear()
    return fake


@pytest.fixture
def host(tmp_path, monkeypatch, make_criu):
    return debian_host(tmp_path, monkeypatch, make_criu)


def warnings_of(result):
    """Warning texts (ansible-core 2.19 returns them as WarningSummary objects)."""
    return [w['event']['msg'] if isinstance(w, dict) else w for w in result.get('warnings', [])]


def run(capsys, args, check_mode=False):
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            criu_install.main()
    return json.loads(capsys.readouterr().out)


def test_package_too_old_for_kernel_fails_clearly(host, capsys):
    result = run(capsys, dict(method='package'))
    assert result['failed'] is True and result['changed'] is False
    assert result['msg'].startswith('The apt package criu 3.17.1 (3.17.1-2+deb12u2) is too old for this host: '
                                    'kernel 6.18.44-fc-v657 needs CRIU >= 4.2')
    assert 'method=source' in result['msg']
    assert result['min_version'] == '4.2' and result['kernel'] == KERNEL
    assert not [call for call in host.ran('apt-get') if 'install' in call]


def test_package_new_enough_is_installed(host, capsys):
    host.answers[('dpkg-query', '-W', '-f=${Status}\t${Version}\n', 'criu')] = (1, '', 'no packages found')
    host.answers[('apt-cache', 'policy', 'criu')] = POLICY_421
    host.answers[('apt-get', 'install')] = (0, '', '')
    host.answers[(host.package_binary, '--version')] = (0, 'Version: 4.2.1\n', '')
    host.answers[(host.package_binary, 'check')] = CHECK_GOOD
    result = run(capsys, dict(method='package'))
    assert result['changed'] is True and result['method'] == 'package'
    assert result['version'] == '4.2.1' and result['check']['ok'] is True
    installs = [call for call in host.ran('apt-get') if 'install' in call]
    assert installs == [['/usr/bin/apt-get', 'install', '-y', '-q', '--no-install-recommends', 'criu']]


def test_package_check_mode_predicts(host, capsys):
    host.answers[('apt-cache', 'policy', 'criu')] = POLICY_421
    result = run(capsys, dict(method='package'), check_mode=True)
    assert result['changed'] is True and result['method'] == 'package' and result['version'] == '4.2.1'
    assert not host.ran('apt-get')


def test_auto_keeps_working_criu(host, capsys, make_criu):
    local = make_criu(host.local)
    host.answers[(local, '--version')] = (0, 'Version: 4.2.1\n', '')
    host.answers[(local, 'check')] = CHECK_GOOD
    result = run(capsys, {})
    assert result['changed'] is False and result['method'] == 'none'
    assert result['path'] == local and result['version'] == '4.2.1'
    assert result['check'] == dict(ok=True, rc=0, warnings=[], errors=[])
    assert not host.ran('apt-cache') and not host.ran('dpkg-query')
    assert not warnings_of(result)


def test_auto_on_debian_12_chooses_source_and_check_mode_builds_nothing(host, capsys):
    result = run(capsys, dict(prefix=str(host.local.parent)), check_mode=True)
    assert result['changed'] is True and result['method'] == 'source'
    assert result['path'] == str(host.local / 'criu') and result['version'] == '4.2.1'
    assert not (host.local / 'criu').exists()
    assert 'older than 4.2' in result['reason'] and 'from source' in result['reason']
    assert not host.ran('make') and not host.ran('apt-get')


def test_source_already_installed_is_unchanged(host, capsys, make_criu):
    local = make_criu(host.local)
    host.answers[(local, '--version')] = (0, 'Version: 4.2.1\n', '')
    host.answers[(local, 'check')] = CHECK_GOOD
    result = run(capsys, dict(method='source', prefix=str(host.local.parent)))
    assert result['changed'] is False and result['method'] == 'none' and result['path'] == local
    assert not host.ran('make')


def test_source_into_prefix_not_on_path_warns(host, capsys, make_criu):
    opt = make_criu(host.tmp_path / 'opt/sbin')
    host.answers[(opt, '--version')] = (0, 'Version: 4.2.1\n', '')
    host.answers[(opt, 'check')] = CHECK_GOOD
    result = run(capsys, dict(method='source', prefix=str(host.tmp_path / 'opt')))
    assert result['changed'] is False
    assert any('is not the criu Docker will run' in warning and host.package_binary in warning
               for warning in warnings_of(result))


def test_source_checksum_mismatch_installs_nothing(host, capsys, tmp_path):
    tarball = tmp_path / 'criu_4.2.1.orig.tar.xz'
    tarball.write_bytes(b'tampered')
    prefix = tmp_path / 'prefix'
    result = run(capsys, dict(method='source', source_url=str(tarball), prefix=str(prefix),
                              source_checksum='sha256:' + '0' * 64))
    assert result['failed'] is True
    assert 'Nothing was unpacked or installed' in result['msg']
    assert result['actual_checksum'] == 'sha256:' + hashlib.sha256(b'tampered').hexdigest()
    assert not prefix.exists()
    assert not host.ran('make') and not host.ran('apt-get')


def test_source_version_below_minimum_is_refused(host, capsys):
    result = run(capsys, dict(method='source', version='4.1.1'))
    assert result['failed'] is True
    assert result['msg'].startswith('version 4.1.1 is older than 4.2')


@pytest.mark.parametrize('args, message', [
    (dict(min_version='1.8'), 'min_version 1.8 is below 2.0'),
    (dict(min_version='new'), "min_version 'new' is not a version"),
    (dict(version='latest'), "version 'latest' is not a CRIU release"),
    (dict(source_checksum='md5:abc'), 'source_checksum must be sha256:<64 hex digits>'),
    (dict(source_url='criu.tar.gz'), 'source_url must be an http(s) URL or an absolute local path'),
    (dict(ppa='criu/ppa'), 'ppa must look like ppa:<owner>/<archive>'),
])
def test_bad_input_gets_a_clear_message(host, capsys, args, message):
    result = run(capsys, args)
    assert result['failed'] is True and message in result['msg']
    assert not host.calls


def test_ppa_is_for_ubuntu_only(host, capsys):
    result = run(capsys, dict(method='ppa'))
    assert result['failed'] is True and result['msg'].startswith('method=ppa needs Ubuntu')


def test_low_min_version_warns_and_keeps_old_criu(host, capsys):
    host.answers[(host.package_binary, 'check')] = CHECK_GOOD
    result = run(capsys, dict(min_version='3.0'))
    assert result['changed'] is False and result['version'] == '3.17.1'
    assert any('below 4.2' in warning for warning in warnings_of(result))


def test_kept_criu_failing_check_is_reported(host, capsys):
    result = run(capsys, dict(method='package', min_version='3.0'))
    assert result['failed'] is True
    assert 'fails `criu check`' in result['msg'] and 'Unexpected rt vDSO area bounds' in result['msg']
    assert result['check']['ok'] is False


def test_source_build_failure_reports_the_end_of_the_build_log(host, capsys, tmp_path, criu_tarball):
    tarball, checksum = criu_tarball
    deps = ci.BUILD_DEPS['apt']
    host.answers[('dpkg-query', '-W', '-f=${Package}\t${Status}\n')] = (
        0, ''.join('%s\tinstall ok installed\n' % name for name in deps), '')
    fatal = 'criu/cr-dump.c:12:10: fatal error: nftables/libnftables.h: No such file or directory'
    log = ['CC       criu/cr-dump.o'] * 50 + [fatal]
    make = ('make', '-j%d' % len(os.sched_getaffinity(0)), 'criu')
    host.answers[make] = (2, '\n'.join(log) + '\n', 'make: *** [Makefile:42: criu] Error 2\n')
    prefix = tmp_path / 'prefix'
    result = run(capsys, dict(method='source', source_url=tarball, source_checksum=checksum, prefix=str(prefix)))
    assert result['failed'] is True
    assert result['msg'].startswith('Building CRIU failed (make exited 2)')
    assert len(result['build_log']) == ci.BUILD_LOG_TAIL
    assert result['build_log'][-2].endswith('nftables/libnftables.h: No such file or directory')
    assert result['build_log'][-1] == 'make: *** [Makefile:42: criu] Error 2'
    assert not prefix.exists()
    assert not host.ran('apt-get')  # every build dependency was already there


def test_source_missing_build_dependencies_are_installed_first(host, capsys, tmp_path, criu_tarball):
    tarball, checksum = criu_tarball
    host.answers[('dpkg-query', '-W', '-f=${Package}\t${Status}\n')] = (
        1, 'build-essential\tinstall ok installed\n', 'dpkg-query: no packages found matching uuid-dev\n')
    host.answers[('apt-get', 'install')] = (0, '', '')
    host.answers[('make', '-j%d' % len(os.sched_getaffinity(0)), 'criu')] = (2, '', 'boom\n')
    run(capsys, dict(method='source', source_url=tarball, source_checksum=checksum,
                     prefix=str(tmp_path / 'prefix')))
    installs = [call for call in host.ran('apt-get') if 'install' in call]
    assert len(installs) == 1
    assert 'build-essential' not in installs[0] and 'uuid-dev' in installs[0] and 'libnftables-dev' in installs[0]
    assert host.calls.index(installs[0]) < host.calls.index(host.ran('make')[0])


def test_source_downloads_over_http_and_verifies(host, capsys, tmp_path, criu_tarball):
    import http.server
    import threading
    tarball, checksum = criu_tarball
    directory = os.path.dirname(tarball)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=directory, **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = 'http://127.0.0.1:%d/%s' % (server.server_address[1], os.path.basename(tarball))
        result = run(capsys, dict(method='source', source_url=url, source_checksum='sha256:' + 'a' * 64,
                                  prefix=str(tmp_path / 'prefix')))
        assert result['failed'] is True and 'Nothing was unpacked or installed' in result['msg']
        assert result['actual_checksum'] == checksum
        missing = run(capsys, dict(method='source', source_url=url + '.missing', prefix=str(tmp_path / 'prefix')))
        assert missing['failed'] is True and missing['msg'].startswith('Downloading the CRIU source from %s.missing '
                                                                       'failed (404)' % url)
    finally:
        server.shutdown()
    assert not (tmp_path / 'prefix').exists()
