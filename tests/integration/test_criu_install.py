"""cryo.docker.criu_install on this machine: Debian's package, a real source build, the PATH rule.

What to expect follows from what the host has, read at run time by tests/testbed/host_truth.py (the
kernel, the criu package dpkg and apt know, the criu first on dockerd's PATH, its version and `criu
check`), not by the module's code: on the lab kernel 6.18 Debian 12's criu 3.17.1 is too old, on
Debian 12's own 6.1 it is fine.

The source tarball is CRIU's upstream release tarball from Debian's source archive, fetched by
`make host` (scripts/debian-archive.sh). Its path and checksum come from
CRYO_CRIU_SOURCE_URL / CRYO_CRIU_SOURCE_CHECKSUM, else from .cache/criu, where the checksum is read
from Debian's signed .dsc (not computed from the file under test).
"""

import os
import re
import subprocess

import pytest

import host_truth as truth
from helpers import ROOT, call_module

CACHE = os.path.join(ROOT, '.cache', 'criu')
VERSION = '4.2.1'


@pytest.fixture(scope='module')
def source():
    url = os.environ.get('CRYO_CRIU_SOURCE_URL')
    checksum = os.environ.get('CRYO_CRIU_SOURCE_CHECKSUM')
    if url and checksum:
        return url, checksum
    tarball = os.path.join(CACHE, 'criu_%s.orig.tar.xz' % VERSION)
    dsc = os.path.join(CACHE, 'criu_%s-1.dsc' % VERSION)
    if not (os.path.isfile(tarball) and os.path.isfile(dsc)):
        pytest.fail('The CRIU source tarball is missing (%s): run `make host`, or set CRYO_CRIU_SOURCE_URL and '
                    'CRYO_CRIU_SOURCE_CHECKSUM.' % tarball)
    with open(dsc) as handle:
        match = re.search(r'^Checksums-Sha256:\n(?:\s.*\n)*?\s([0-9a-f]{64}) \d+ %s$'
                          % re.escape(os.path.basename(tarball)),
                          handle.read(), re.MULTILINE)
    assert match, 'no sha256 for %s in %s' % (tarball, dsc)
    return tarball, 'sha256:' + match.group(1)


def warnings_of(result):
    return [w['event']['msg'] if isinstance(w, dict) else w for w in result.get('warnings', [])]


def dpkg_state():
    proc = subprocess.run(['dpkg-query', '-W', '-f=${Status} ${Version}', 'criu'], capture_output=True, text=True,
                          check=False)
    return proc.returncode, proc.stdout


def test_debian_package_against_this_kernel():
    """Debian's criu package is judged by the CRIU this kernel needs: too old (3.17.1 on a kernel >= 6.13)
    fails and names the way out; new enough and installed is kept; new enough and not installed would be
    installed (asked in check mode only: this test installs nothing)."""
    before = dpkg_state()
    status, installed = truth.dpkg_criu()
    installed = truth.upstream(installed) if status.endswith(' installed') else None
    candidate = truth.apt_candidate()
    needed = truth.version(truth.criu_needed())
    release = truth.kernel_release()
    if installed and truth.at_least(truth.version(installed), needed):
        result = call_module('criu_install', dict(method='package'))
        assert result.get('failed') is not True, result
        assert result['changed'] is False and result['path'] == '/usr/sbin/criu', result
    elif candidate and truth.at_least(truth.version(truth.upstream(candidate)), needed):
        result = call_module('criu_install', dict(method='package'), check=True)
        assert result['changed'] is True and result['method'] == 'package', result
    else:
        assert candidate, 'apt offers no criu package here: nothing to judge (apt-get update?)'
        result = call_module('criu_install', dict(method='package'))
        assert result.get('failed') is True, result
        assert result['changed'] is False
        version = truth.upstream(candidate)
        assert re.match(r'The apt package criu %s \(%s\) is too old for this host: kernel %s needs CRIU >= %s '
                        % (re.escape(version), re.escape(candidate), re.escape(release),
                           re.escape(truth.criu_needed())), result['msg']), result['msg']
        assert 'method=source' in result['msg']
        assert result['min_version'] == truth.criu_needed() and result['version'] == version
    assert dpkg_state() == before


@pytest.mark.timeout(600)  # builds CRIU from source: ~30 s here, minutes on a cold machine
def test_source_build_into_a_prefix(tmp_path, source):
    url, checksum = source
    prefix = str(tmp_path / 'criu')
    target = os.path.join(prefix, 'sbin', 'criu')
    args = dict(method='source', version=VERSION, source_url=url, source_checksum=checksum, prefix=prefix)

    predicted = call_module('criu_install', args, check=True)
    assert predicted['changed'] is True and predicted['method'] == 'source', predicted
    assert predicted['path'] == target and predicted['version'] == VERSION
    assert not os.path.exists(prefix)

    first = call_module('criu_install', args)
    assert first.get('failed') is not True, first
    assert first['changed'] is True and first['method'] == 'source'
    assert first['path'] == target and first['version'] == VERSION
    assert first['check']['ok'] is True and first['check']['errors'] == []
    assert first['min_version'] == truth.criu_needed() and first['kernel'] == truth.kernel_release()
    # Not first on dockerd's PATH: the module says Docker will not use it.
    assert any('%s is not the criu Docker will run' % target in w for w in warnings_of(first)), first
    # The installed binary, checked independently of the module.
    assert oct(os.stat(target).st_mode & 0o777) == '0o755'
    assert not [name for name in os.listdir(os.path.dirname(target)) if name != 'criu']
    version = subprocess.run([target, '--version'], capture_output=True, text=True, check=True).stdout
    assert 'Version: %s' % VERSION in version
    check = subprocess.run([target, 'check'], capture_output=True, text=True, check=False)
    assert check.returncode == 0 and 'Looks good.' in check.stdout, check

    mtime = os.stat(target).st_mtime_ns
    second = call_module('criu_install', args)
    assert second['changed'] is False and second['method'] == 'none', second
    assert second['version'] == VERSION and second['check']['ok'] is True
    assert os.stat(target).st_mtime_ns == mtime

    again = call_module('criu_install', args, check=True)
    assert again['changed'] is False and again['method'] == 'none'


def test_wrong_checksum_installs_nothing(tmp_path, source):
    url, _checksum = source
    prefix = tmp_path / 'criu'
    result = call_module('criu_install', dict(method='source', source_url=url, prefix=str(prefix),
                                              source_checksum='sha256:' + '0' * 64))
    assert result.get('failed') is True, result
    assert 'not the sha256:%s given in source_checksum' % ('0' * 64) in result['msg']
    assert 'Nothing was unpacked or installed' in result['msg']
    assert result['changed'] is False
    assert not prefix.exists()
    assert not [name for name in os.listdir('/tmp') if name.startswith('cryo-criu-build-')]


def test_auto_keeps_the_working_criu_docker_uses():
    """After `make host` the criu first on dockerd's PATH (4.2.1 in /usr/local/sbin) works and is new enough
    for the kernel: auto keeps it. Were it not, auto would install one (asked in check mode only)."""
    current = truth.criu_of_docker()
    if not (current and truth.criu_fit(current) and truth.criu_check_passes(current)):
        result = call_module('criu_install', {}, check=True)
        assert result['changed'] is True and result['method'] in ('package', 'ppa', 'source'), result
        return
    result = call_module('criu_install', {})
    assert result.get('failed') is not True, result
    assert result['changed'] is False and result['method'] == 'none'
    assert result['path'] == current
    assert result['check']['ok'] is True
    assert 'works and is new enough' in result['reason']
    assert not warnings_of(result)
