"""CRIU installation logic on command outputs recorded on Debian 12 (kernel 6.18) and elsewhere."""

import hashlib
import os

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _criu_install as ci
from ansible_collections.cryo.docker.plugins.module_utils._host import find_program
from ansible_collections.cryo.docker.plugins.module_utils._criu import (
    min_version_for_kernel,
    parse_check,
    parse_version,
    version_at_least,
)

# `criu --version`, CRIU 4.2.1 built from the release tarball / Debian 12's package / a git build.
VERSION_421 = 'Version: 4.2.1\n'
VERSION_3171 = 'Version: 3.17.1\n'
VERSION_GIT = 'Version: 4.1\nGitID: v4.1-37-g8d4b2d0a1\n'

# `criu check` with CRIU 4.2.1 on kernel 6.18: rc 0.
CHECK_GOOD = (0, 'Looks good.\n', '')
# `criu check --all` on the same host (no CONFIG_MEM_SOFT_DIRTY): rc 1, warnings on stderr.
CHECK_WARN = (1, 'Looks good but some kernel features are missing\nwhich, depending on your process tree, may cause\n'
                 'dump or restore failure.\n',
              'Warn  (criu/cr-check.c:824): Dirty tracking is OFF. Memory snapshot will not work.\n')
# `criu check` with Debian 12's CRIU 3.17.1 on kernel 6.18: rc 1, nothing on stdout.
CHECK_BAD = (1, '', 'Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n'
                    'Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable\n'
                    'Error (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed when initializing kerndat.\n'
                    'Error (criu/crtools.c:260): Could not initialize kernel features detection.\n')
# `criu check` as a normal user.
CHECK_NOT_ROOT = (1, '', 'CRIU needs to have the CAP_SYS_ADMIN or the CAP_CHECKPOINT_RESTORE capability: \n'
                         'setcap cap_checkpoint_restore+eip criu\n')

# dpkg-query -W -f='${Status}\t${Version}\n' criu
DPKG_INSTALLED = 'install ok installed\t3.17.1-2+deb12u2\n'
DPKG_REMOVED = 'deinstall ok config-files\t3.17.1-2+deb12u2\n'
# apt-cache policy criu on Debian 12
APT_POLICY_BOOKWORM = """criu:
  Installed: 3.17.1-2+deb12u2
  Candidate: 3.17.1-2+deb12u2
  Version table:
 *** 3.17.1-2+deb12u2 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
"""
APT_POLICY_TRIXIE_NOT_INSTALLED = """criu:
  Installed: (none)
  Candidate: 4.1.1-1
  Version table:
     4.1.1-1 500
        500 http://deb.debian.org/debian trixie/main amd64 Packages
"""
APT_POLICY_UBUNTU_PPA = """criu:
  Installed: (none)
  Candidate: 4.2.1-1~ubuntu24.04~ppa1
  Version table:
     4.2.1-1~ubuntu24.04~ppa1 500
        500 https://ppa.launchpadcontent.net/criu/ppa/ubuntu noble/main amd64 Packages
     3.17.1-2ubuntu1 500
        500 http://archive.ubuntu.com/ubuntu noble/universe amd64 Packages
"""
APT_POLICY_NO_LISTS = 'criu:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n'
# dnf -q repoquery --latest-limit 1 --queryformat '%{version}\n' criu (Fedora 41)
DNF_REPOQUERY = '4.0\n4.1\n'
RPM_NOT_INSTALLED = (1, 'package criu is not installed\n')

OS_RELEASE_UBUNTU = 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n' \
                    'VERSION_CODENAME=noble\n'
OS_RELEASE_DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n' \
                    'ID=debian\n'


def test_versions_from_criu():
    assert parse_version(VERSION_421) == '4.2.1'
    assert parse_version(VERSION_3171) == '3.17.1'
    assert parse_version(VERSION_GIT) == '4.1'
    assert parse_version('criu: command not found') is None


def test_check_good():
    check = parse_check(*CHECK_GOOD)
    assert check == dict(ok=True, rc=0, warnings=[], errors=[])


def test_check_with_missing_features_passes_with_warnings():
    check = parse_check(*CHECK_WARN)
    assert check['ok'] is True and check['errors'] == []
    assert check['warnings'][0].startswith('Warn  (criu/cr-check.c:824): Dirty tracking is OFF')
    assert check['warnings'][1] == ('Looks good but some kernel features are missing which, depending on your '
                                    'process tree, may cause dump or restore failure.')


def test_check_failing_on_new_kernel():
    check = parse_check(*CHECK_BAD)
    assert check['ok'] is False and check['rc'] == 1
    assert check['errors'][0] == 'Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds'
    assert len(check['errors']) == 4


def test_check_failing_without_error_lines_keeps_the_output():
    check = parse_check(*CHECK_NOT_ROOT)
    assert check['ok'] is False
    assert 'CAP_CHECKPOINT_RESTORE' in check['errors'][0]


@pytest.mark.parametrize('kernel, minimum', [
    ('6.18.44-fc-v657', '4.2'),
    ('6.16.0', '4.2'),
    ('6.15.9-arch1', '4.1'),
    ('6.13.0', '4.1'),
    ('6.12.48+deb13-amd64', '2.0'),
    ('6.1.0-26-amd64', '2.0'),
    ('garbage', '2.0'),
])
def test_kernel_rules(kernel, minimum):
    assert min_version_for_kernel(kernel)[0] == minimum


@pytest.mark.parametrize('text, expected', [
    ('4.2', ('4.2', None)),
    ('2.0', ('2.0', None)),
    ('5', (None, "min_version '5' is not a version such as 4.2 or 4.2.1")),
    ('1.9', (None, 'min_version 1.9 is below 2.0, the oldest CRIU Docker supports')),
])
def test_min_version_never_below_docker_minimum(text, expected):
    assert ci.check_min_version(text) == expected


@pytest.mark.parametrize('package_version, upstream', [
    ('3.17.1-2+deb12u2', '3.17.1'),
    ('4.2.1-1~ubuntu24.04~ppa1', '4.2.1'),
    ('1:4.2-1ubuntu1', '4.2'),
    ('4.1', '4.1'),
    ('4.1.1+ds-1', '4.1.1'),
    ('(none)', None),
    (None, None),
])
def test_upstream_version(package_version, upstream):
    assert ci.upstream_version(package_version) == upstream


def test_dpkg_query():
    assert ci.parse_dpkg_status(DPKG_INSTALLED) == '3.17.1-2+deb12u2'
    assert ci.parse_dpkg_status(DPKG_REMOVED) is None
    assert ci.parse_dpkg_status('') is None


def test_apt_cache_policy():
    assert ci.parse_apt_policy(APT_POLICY_BOOKWORM) == dict(installed='3.17.1-2+deb12u2', candidate='3.17.1-2+deb12u2')
    assert ci.parse_apt_policy(APT_POLICY_TRIXIE_NOT_INSTALLED) == dict(installed=None, candidate='4.1.1-1')
    assert ci.parse_apt_policy(APT_POLICY_UBUNTU_PPA)['candidate'] == '4.2.1-1~ubuntu24.04~ppa1'
    assert ci.parse_apt_policy(APT_POLICY_NO_LISTS) == dict(installed=None, candidate=None)
    assert ci.parse_apt_policy('') == dict(installed=None, candidate=None)


def test_rpm_and_dnf():
    assert ci.parse_rpm_version(0, '3.19\n') == '3.19'
    assert ci.parse_rpm_version(*RPM_NOT_INSTALLED) is None
    assert ci.parse_dnf_candidate(DNF_REPOQUERY) == '4.1'
    assert ci.parse_dnf_candidate('') is None


def test_os_release_and_ppa():
    assert ci.parse_os_release(OS_RELEASE_UBUNTU)['id'] == 'ubuntu'
    assert ci.parse_os_release(OS_RELEASE_DEBIAN)['pretty_name'] == 'Debian GNU/Linux 12 (bookworm)'
    assert ci.parse_ppa('ppa:criu/ppa') == ('criu', 'ppa')
    assert ci.parse_ppa('criu/ppa') is None
    assert ci.parse_ppa('ppa:criu/ppa; rm -rf /') is None
    deb822 = 'Types: deb\nURIs: https://ppa.launchpadcontent.net/criu/ppa/ubuntu/\nSuites: noble\n'
    one_line = 'deb https://ppa.launchpad.net/criu/ppa/ubuntu jammy main\n'
    commented = '# deb https://ppa.launchpadcontent.net/criu/ppa/ubuntu noble main\n'
    assert ci.ppa_in_sources('ppa:criu/ppa', [deb822])
    assert ci.ppa_in_sources('ppa:criu/ppa', ['', one_line])
    assert not ci.ppa_in_sources('ppa:criu/ppa', [commented])
    assert not ci.ppa_in_sources('ppa:criu/other', [deb822])


def test_checksum_format():
    digest = '29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9'
    assert ci.parse_checksum('sha256:' + digest) == digest
    assert ci.parse_checksum('sha256:' + digest.upper()) == digest
    assert ci.parse_checksum(digest) is None
    assert ci.parse_checksum('md5:d41d8cd98f00b204e9800998ecf8427e') is None
    assert ci.parse_checksum('sha256:' + digest[:-1]) is None
    assert ci.parse_checksum(None) is None


def test_checksum_verify(tmp_path):
    tarball = tmp_path / 'criu.tar.xz'
    tarball.write_bytes(b'not really a tarball\n' * 1000)
    good = hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert ci.verify_checksum(str(tarball), good) == (True, good)
    assert ci.verify_checksum(str(tarball), good.upper()) == (True, good)
    ok, actual = ci.verify_checksum(str(tarball), '0' * 64)
    assert not ok and actual == good


def test_first_on_path_is_the_installed_one(tmp_path, make_criu):
    local = make_criu(tmp_path / 'usr/local/sbin')
    system = make_criu(tmp_path / 'usr/sbin')
    search = '%s:relative/dir:%s' % (tmp_path / 'usr/local/sbin', tmp_path / 'usr/sbin')
    assert find_program('criu', search) == local
    assert find_program('criu', str(tmp_path / 'usr/sbin')) == system
    assert find_program('criu', 'relative/dir') is None
    # A build not yet installed into a directory that comes first would be the one.
    opt = str(tmp_path / 'opt/sbin/criu')
    assert ci.first_criu('%s:%s' % (tmp_path / 'opt/sbin', search), opt) == opt
    assert ci.first_criu(search, opt) == local
    assert ci.first_criu('/nonexistent', opt) is None


WORKING_421 = dict(path='/usr/local/sbin/criu', version='4.2.1', check_ok=True)
BROKEN_3171 = dict(path='/usr/sbin/criu', version='3.17.1', check_ok=False)
DEBIAN_12 = dict(manager='apt', installed='3.17.1-2+deb12u2', candidate='3.17.1-2+deb12u2')


@pytest.mark.parametrize('facts, action', [
    # This machine: 4.2.1 in /usr/local/sbin, first on PATH, works.
    (dict(current=WORKING_421), 'none'),
    # Fresh Debian 12 on kernel 6.18: the package is too old, not Ubuntu -> source.
    (dict(current=None, package=dict(manager='apt', installed=None, candidate='3.17.1-2+deb12u2')), 'source'),
    (dict(current=BROKEN_3171, package=DEBIAN_12), 'source'),
    # Installed and new enough but `criu check` fails: not kept.
    (dict(current=dict(WORKING_421, check_ok=False), package=DEBIAN_12), 'source'),
    # An old kernel where Debian 12's package is fine.
    (dict(current=None, package=DEBIAN_12, min_version='2.0'), 'package'),
    (dict(current=dict(BROKEN_3171, check_ok=True), package=DEBIAN_12, min_version='2.0'), 'none'),
    # A distribution whose candidate is new enough (an upgrade of an old installed one).
    (dict(current=BROKEN_3171, package=dict(manager='apt', installed='3.17.1-2', candidate='4.2.1-1')), 'package'),
    # Ubuntu: its own package too old -> the PPA.
    (dict(current=None, package=dict(manager='apt', installed=None, candidate='3.17.1-2ubuntu1'), ubuntu=True), 'ppa'),
    # No package manager at all.
    (dict(current=None, package=dict(manager=None)), 'source'),
    (dict(current=None, package=dict(manager='dnf', installed=None, candidate=None)), 'source'),
])
def test_decide_auto(facts, action):
    facts = dict(dict(min_version='4.2', version='4.2.1', ubuntu=False), **facts)
    decided, reason = ci.decide_auto(facts)
    assert decided == action, reason


def test_decide_auto_says_why():
    facts = dict(min_version='4.2', version='4.2.1', ubuntu=False, current=BROKEN_3171, package=DEBIAN_12)
    assert ci.decide_auto(facts)[1] == ('the installed CRIU 3.17.1 at /usr/sbin/criu is older than 4.2; the '
                                        'distribution package (3.17.1) is older than 4.2; building CRIU 4.2.1 from source')


def test_version_comparison():
    assert version_at_least('4.2.1', '4.2')
    assert version_at_least('4.2', '4.2.0')
    assert not version_at_least('4.1.1', '4.2')
    assert not version_at_least('3.17.1', '4.2')
    assert version_at_least('10.0', '4.2')


def test_unpack_refuses_members_outside(tmp_path):
    import tarfile
    bad = tmp_path / 'bad.tar'
    payload = tmp_path / 'payload'
    payload.write_text('x')
    with tarfile.open(str(bad), 'w') as archive:
        archive.add(str(payload), arcname='../escaped')
    installer = ci.CriuHost(module=None)
    with pytest.raises(ci.InstallError):
        installer.unpack(str(bad), str(tmp_path / 'src'))
    assert not (tmp_path / 'escaped').exists()


def test_unpack_finds_the_source_tree(tmp_path, criu_tarball):
    import tarfile
    good = criu_tarball[0]
    installer = ci.CriuHost(module=None)
    assert installer.unpack(good, str(tmp_path / 'src')) == os.path.join(str(tmp_path / 'src'), 'criu-4.2.1')
    (tmp_path / 'other').mkdir()
    not_criu = tmp_path / 'other.tar'
    with tarfile.open(str(not_criu), 'w') as archive:
        archive.add(str(tmp_path / 'tree' / 'criu-4.2.1' / 'Makefile'), arcname='README')
    with pytest.raises(ci.InstallError, match='does not look like CRIU source'):
        installer.unpack(str(not_criu), str(tmp_path / 'other'))
