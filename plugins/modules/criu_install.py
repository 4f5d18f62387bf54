#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: criu_install
short_description: Make sure a CRIU that works on this host's kernel is installed
version_added: 0.1.0
description:
  - Docker checkpoints and restores containers with CRIU, which runc runs as C(criu) from its
    C(PATH). A CRIU older than the running kernel supports fails there, often only at the first
    checkpoint. This module makes sure the C(criu) runc will run is new enough and passes
    C(criu check), installing it from the distribution, the CRIU PPA (Ubuntu) or source.
  - B(Which criu counts as installed.) runc searches the C(PATH) it inherits from C(dockerd)
    (through containerd). The module reads that C(PATH) from the running C(dockerd) process
    (C(/proc/PID/environ)); when no C(dockerd) runs, or its environment cannot be read, it uses the
    default C(PATH) a service manager gives services,
    C(/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin). The first C(criu) found
    there is the installed one. So C(/usr/local/sbin/criu) (a source build with the default
    O(prefix)) shadows the distribution's C(/usr/sbin/criu).
  - When the CRIU this module installed or found is not that first C(criu) (for example a
    source build into a O(prefix) whose C(sbin) is not on the C(PATH), or a package under a
    newer or older C(/usr/local/sbin/criu)), it warns, since Docker will not use it.
  - After every install, and for the CRIU it keeps, the module runs C(criu check) and fails
    when that fails. C(Looks good but some kernel features are missing) counts as passing; the
    missing features come back as warnings and in RV(check.warnings).
  - Idempotent - a CRIU that already meets the request is left alone and the result is
    C(changed=false). In check mode the module looks (it runs C(criu --version), C(criu check)
    and package queries, which change nothing) and predicts; it installs, downloads and builds
    nothing.
  - Must run as root (C(become)) to install, and for C(criu check).
extends_documentation_fragment:
  - cryo.docker._attributes
options:
  method:
    description:
      - How to get CRIU.
      - V(auto) keeps the installed CRIU when it works (C(criu check) passes) and is at least
        O(min_version). Otherwise it takes the distribution package when the candidate version
        of that package is new enough; otherwise, on Ubuntu, the PPA O(ppa) (falling through
        to source when the PPA's version is too old too); otherwise it builds O(version) from
        source.
      - V(package) installs the distribution's C(criu) package (apt on Debian/Ubuntu, dnf on
        Fedora/RHEL). When the package the host would install is older than O(min_version) the
        module fails and installs nothing; for example Debian 12's CRIU 3.17.1 on a kernel 6.18,
        which needs 4.2. An installed package that is new enough is left alone.
      - V(ppa) adds O(ppa) (Ubuntu only, with C(add-apt-repository)) and installs C(criu) from
        it. It fails when the PPA's version is older than O(min_version).
      - V(source) builds O(version) from O(source_url) and installs the C(criu) binary as
        C(<prefix>/sbin/criu). When that file already reports O(version), nothing is built.
        Build dependencies are installed with the host's package manager (apt or dnf; on
        RHEL some of them, such as C(libnet-devel), come from EPEL and CRB). The build runs
        C(make -j<cores> criu) in a temporary directory that is removed afterwards; only the
        C(criu) binary is installed (runc needs nothing else). The binary is copied next to
        its target under a temporary name and renamed over it, so a running C(criu) is never
        half replaced. When the build fails the module reports the last lines of the build log
        in RV(build_log).
    type: str
    choices: [auto, package, ppa, source]
    default: auto
  min_version:
    description:
      - The oldest CRIU that is acceptable, such as V(4.2) or V(4.2.1).
      - Default is the oldest CRIU known to work on the running kernel - 4.2 on kernels 6.16
        and newer (older CRIU cannot checkpoint TCP or UDP sockets there), 4.1 on kernels 6.13
        to 6.15 (older CRIU fails there with C(Unexpected rt vDSO area bounds)), and 2.0,
        Docker's own minimum, on older kernels.
      - Values below 2.0 are refused. A value below the kernel's known minimum is accepted with
        a warning.
    type: str
  version:
    description:
      - The CRIU release to build with O(method=source) (or when O(method=auto) falls through
        to source), as C(MAJOR.MINOR[.PATCH]).
      - It must be at least O(min_version). The binary built from O(source_url) must report
        this version, otherwise the module fails before installing it.
    type: str
    default: 4.2.1
  source_url:
    description:
      - Where the release tarball (C(.tar.gz), C(.tar.xz), C(.tar.bz2)) of O(version) comes from -
        an C(http://) or C(https://) URL, or an absolute local path (C(file://) is accepted too).
      - Default is the upstream release tarball
        C(https://github.com/checkpoint-restore/criu/archive/refs/tags/v<version>.tar.gz).
      - Debian's source archive carries the same upstream tarball as
        C(criu_<version>.orig.tar.xz); its C(.dsc) file lists its sha256, for O(source_checksum).
    type: str
  source_checksum:
    description:
      - The expected checksum of the tarball, as C(sha256:<64 hex digits>).
      - It is verified before the tarball is unpacked. On a mismatch the module fails and
        nothing is built or installed (not even build dependencies).
      - There is no default - the module ships no checksum it could not verify. Without one the
        module warns that the source was not verified.
    type: str
  prefix:
    description:
      - Installation prefix for O(method=source); the binary goes to C(<prefix>/sbin/criu).
      - Docker only uses it when C(<prefix>/sbin) comes first on dockerd's C(PATH) (see above);
        the module warns otherwise.
    type: path
    default: /usr/local
  ppa:
    description:
      - The Launchpad PPA used by O(method=ppa), and by O(method=auto) on Ubuntu, as
        C(ppa:<owner>/<archive>).
    type: str
    default: ppa:criu/ppa
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
  platform:
    platforms: posix
    details:
      - Linux hosts with apt (Debian, Ubuntu) or dnf (Fedora, RHEL and rebuilds).
notes:
  - The source build needs a compiler and about 200 MB of space in the temporary directory
    (E(TMPDIR), else C(/tmp)); it takes about 20 seconds on two cores.
  - Fresh Debian/Ubuntu hosts have no package lists; the module runs C(apt-get update) when
    C(apt-cache policy) knows no candidate, or when installing packages fails (not in check mode).
  - The module does not manage C(/etc/criu/runc.conf); the role C(cryo.docker.criu) does.
seealso:
  - name: CRIU installation
    description: Upstream notes on building CRIU and its dependencies.
    link: https://criu.org/Installation
  - name: Docker checkpoint and restore
    description: The experimental C(docker checkpoint) commands that need CRIU.
    link: https://docs.docker.com/reference/cli/docker/checkpoint/
author:
  - cryo.docker contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Make sure a CRIU that works on this kernel is installed (whatever way fits)
  cryo.docker.criu_install:
  become: true

- name: Build CRIU 4.2.1 from a tarball this host can reach, verified before unpacking
  cryo.docker.criu_install:
    method: source
    version: 4.2.1
    source_url: /srv/mirror/criu_4.2.1.orig.tar.xz
    source_checksum: sha256:29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9
  become: true

- name: Use the distribution's package, and fail clearly if it is too old for this kernel
  cryo.docker.criu_install:
    method: package
  become: true

- name: Require a CRIU of at least 4.2 whatever the kernel says
  cryo.docker.criu_install:
    min_version: "4.2"
  become: true
  register: criu

- name: Show what runc will run
  ansible.builtin.debug:
    msg: "CRIU {{ criu.version }} at {{ criu.path }} ({{ criu.method }})"
"""

RETURN = r"""
version:
  description:
    - The version of the CRIU at RV(path).
    - In check mode, when an install is predicted, the version that would be installed
      (for a package, its candidate version; unknown for a PPA not yet added).
  returned: success
  type: str
  sample: 4.2.1
path:
  description:
    - The CRIU binary that was kept or installed.
  returned: success
  type: str
  sample: /usr/local/sbin/criu
method:
  description:
    - What was done - V(package), V(ppa) or V(source) when CRIU was installed or replaced
      (or would be, in check mode), V(none) when nothing needed to change.
  returned: always
  type: str
  sample: source
check:
  description:
    - The result of C(criu check) for RV(path). Not returned in check mode when an install was
      predicted (there is nothing to check yet).
  returned: success
  type: dict
  contains:
    ok:
      description: Whether CRIU says it can work on this kernel.
      type: bool
      sample: true
    rc:
      description: Exit code of C(criu check).
      type: int
      sample: 0
    warnings:
      description: C(Warn) lines, and CRIU's note when some kernel features are missing.
      type: list
      elements: str
      sample: []
    errors:
      description: C(Error) lines (or the last lines of the output when it failed without any).
      type: list
      elements: str
      sample: []
kernel:
  description: The running kernel release.
  returned: always
  type: str
  sample: 6.18.44-fc-v657
reason:
  description: Why O(method=auto) chose what it did.
  returned: when O(method=auto)
  type: str
  sample: the installed CRIU 3.17.1 at /usr/sbin/criu is older than 4.2; building CRIU 4.2.1 from source
min_version:
  description: The oldest acceptable CRIU, given or derived from the kernel.
  returned: always
  type: str
  sample: "4.2"
build_log:
  description: The last lines of the build log, when a source build failed.
  returned: failure of a source build
  type: list
  elements: str
  sample: ["criu/cr-restore.c:12:10: fatal error: nftables/libnftables.h: No such file or directory"]
"""

import os
import re
import shutil
import tempfile

from ansible_collections.cryo.docker.plugins.module_utils._common import Manager, run
from ansible_collections.cryo.docker.plugins.module_utils._criu import (
    min_version_for_kernel,
    probe,
    version_at_least,
    version_tuple,
)
from ansible_collections.cryo.docker.plugins.module_utils._criu_install import (
    BUILD_DEPS,
    PACKAGE_BINARY,
    PACKAGE_NAME,
    UPSTREAM_URL,
    CriuHost,
    InstallError,
    check_min_version,
    decide_auto,
    first_criu,
    parse_checksum,
    parse_ppa,
    same_file,
    upstream_version,
    verify_checksum,
)
from ansible_collections.cryo.docker.plugins.module_utils._host import Host, find_program


class CriuInstall(Manager):
    """plan: which CRIU runc runs and what method gives a good one; act: install it; report: probe
    the result and fail unless it is new enough and passes `criu check`."""

    def __init__(self, module):
        super().__init__(module)
        self.host = Host()
        self.tools = CriuHost(module)
        self.kernel = self.host.kernel_release()
        self.result = dict(method='none', kernel=self.kernel)
        self.min_version, self.kernel_reason = self.validate()
        self.result['min_version'] = self.min_version
        self.target = os.path.join(self.params['prefix'], 'sbin', 'criu')
        self.action = None   # package, ppa or source: what act() does
        self.path = None     # the CRIU the result is about
        self.known = None    # its probe, when plan() already ran one
        self.predicted = None

    def validate(self):
        params = self.params
        kernel_min, kernel_reason = min_version_for_kernel(self.kernel)
        if params['min_version'] is None:
            min_version = kernel_min
        else:
            min_version, problem = check_min_version(params['min_version'])
            if problem:
                self.fail(problem + '. Leave min_version unset to use the kernel\'s minimum (%s).' % kernel_min)
            if not version_at_least(min_version, kernel_min):
                self.module.warn('min_version %s is below %s, the oldest CRIU known to work on kernel %s: %s.'
                                 % (min_version, kernel_min, self.kernel, kernel_reason))
            kernel_reason = 'min_version is %s' % min_version
        if not re.match(r'^\d+\.\d+(?:\.\d+)?$', params['version']):
            self.fail('version %r is not a CRIU release such as 4.2.1. Give a release number, or leave version out '
                      'for the default.' % params['version'])
        if params['source_checksum'] is not None and parse_checksum(params['source_checksum']) is None:
            self.fail('source_checksum must be sha256:<64 hex digits>, not %r.' % params['source_checksum'])
        if parse_ppa(params['ppa']) is None:
            self.fail('ppa must look like ppa:<owner>/<archive> (such as ppa:criu/ppa), not %r.' % params['ppa'])
        if not os.path.isabs(params['prefix']):
            self.fail('prefix must be an absolute path, not %r.' % params['prefix'])
        url = params['source_url']
        if url is not None and not (re.match(r'^(https?|file)://', url) or os.path.isabs(url)):
            self.fail('source_url must be an http(s) URL or an absolute local path, not %r.' % url)
        return min_version, kernel_reason

    def fail(self, msg, **details):
        """Raise the failure, with what the result knows so far beside the message."""
        raise InstallError(msg, **dict(self.result, changed=self.changed, **details))

    def too_old(self, what, version):
        self.fail('%s is too old for this host: kernel %s needs CRIU >= %s (%s). Use method=source (or method=ppa '
                  'on Ubuntu), or method=auto to let the module choose.'
                  % (what, self.kernel, self.min_version, self.kernel_reason), version=version)

    # -- plan ---------------------------------------------------------------------------------

    def plan(self):
        auto = self.params['method'] == 'auto'
        method = self.plan_auto() if auto else self.params['method']
        if method is not None:
            dict(package=self.plan_package, ppa=self.plan_ppa, source=self.plan_source)[method](auto=auto)
        if self.changed:
            self.result['method'] = self.action

    def plan_auto(self):
        """The method auto takes, or None when the CRIU runc runs now is good."""
        current = self.current()
        facts = dict(min_version=self.min_version, version=self.params['version'], current=current)
        if not (current and current['check_ok'] and version_at_least(current['version'], self.min_version)):
            facts['package'] = self.tools.package(refresh=True)
            facts['ubuntu'] = self.tools.is_ubuntu()
        action, reason = decide_auto(facts)
        self.result['reason'] = reason
        if action == 'none':
            self.path, self.known = current['path'], current
            return None
        return action

    def current(self):
        """The CRIU runc would run now (path, version, whether `criu check` passes), or None."""
        path = find_program('criu', self.host.search_path()[0])
        return probe(self.module, path) if path else None

    def plan_package(self, auto=False, method='package', ppa_note=''):
        package = self.tools.package(refresh=True)
        if not package['manager']:
            self.fail('No apt-get or dnf on this host: method=%s cannot install the criu package. Use method=source.'
                      % method)
        installed = upstream_version(package['installed'])
        candidate = upstream_version(package['candidate'])
        self.path = PACKAGE_BINARY
        if installed and version_at_least(installed, self.min_version):
            return
        if candidate is None:
            self.fail('The package sources of this host offer no criu package%s. Use method=source.' % ppa_note,
                      package=package)
        if not version_at_least(candidate, self.min_version):
            if auto and method == 'ppa':
                return self.plan_source(auto=True)
            self.too_old('The %s package criu %s (%s)%s' % (package['manager'], candidate, package['candidate'],
                                                            ppa_note), candidate)
        self.changed, self.action, self.predicted = True, method, candidate

    def plan_ppa(self, auto=False):
        if not self.tools.is_ubuntu():
            self.fail('method=ppa needs Ubuntu (PPAs are built for Ubuntu releases); this host is %s. '
                      'Use method=package or method=source.'
                      % (self.tools.os_release().get('pretty_name') or 'not Ubuntu'))
        if self.tools.manager() != 'apt':
            self.fail('method=ppa needs apt-get, which this host lacks.')
        if not self.tools.ppa_configured(self.params['ppa']):
            # What the PPA offers is known only once it is added (act).
            self.changed, self.action, self.path = True, 'ppa', PACKAGE_BINARY
            return
        self.plan_package(auto=auto, method='ppa', ppa_note=' (with %s added)' % self.params['ppa'])

    def plan_source(self, auto=False):
        version = self.params['version']
        if not version_at_least(version, self.min_version):
            self.fail('version %s is older than %s, the oldest CRIU acceptable here (%s): set version to a newer '
                      'release.' % (version, self.min_version, self.kernel_reason))
        self.path = self.target
        installed = self.tools.version_of(self.target)
        if installed and version_tuple(installed) == version_tuple(version):
            return
        if self.module.check_mode:
            local = self.source_url()
            local = local[len('file://'):] if local.startswith('file://') else local
            if not re.match(r'^https?://', local) and not os.path.isfile(local):
                self.fail('The CRIU source tarball %s does not exist (source_url).' % local)
        self.changed, self.action, self.predicted = True, 'source', version

    def source_url(self):
        return self.params['source_url'] or UPSTREAM_URL.format(version=self.params['version'])

    # -- act ----------------------------------------------------------------------------------

    def act(self):
        dict(package=self.install_package, ppa=self.install_ppa, source=self.build_and_install)[self.action]()

    def install_package(self):
        self.tools.install_packages([PACKAGE_NAME], 'the criu package')

    def install_ppa(self):
        """Add the PPA, then install criu from it; what it offers is known only now, so the package step
        is planned again: nothing (already new enough), the package, or (auto) a source build when even
        the PPA's criu is too old."""
        if not self.tools.ppa_configured(self.params['ppa']):
            self.tools.add_ppa(self.params['ppa'])
        self.predicted = None
        self.plan_package(auto=self.params['method'] == 'auto', method='ppa',
                          ppa_note=' (with %s added)' % self.params['ppa'])
        self.result['method'] = self.action
        if self.action == 'source':
            self.build_and_install()
        elif self.predicted:
            self.install_package()

    def build_and_install(self):
        url, version = self.source_url(), self.params['version']
        workdir = tempfile.mkdtemp(prefix='cryo-criu-build-')
        try:
            tarball = self.tools.fetch(url, workdir)
            expected = parse_checksum(self.params['source_checksum'])
            if expected is None:
                self.module.warn('source_checksum is not set: the CRIU source from %s was not verified. Set '
                                 'source_checksum to sha256:<hex> from the release or Debian\'s .dsc.' % url)
            else:
                ok, actual = verify_checksum(tarball, expected)
                if not ok:
                    raise InstallError(
                        'The CRIU source from %s has checksum sha256:%s, not the sha256:%s given in source_checksum: '
                        'the file is corrupt, incomplete or another release. Nothing was unpacked or installed.'
                        % (url, actual, expected), expected_checksum='sha256:' + expected,
                        actual_checksum='sha256:' + actual)
            source_dir = self.tools.unpack(tarball, os.path.join(workdir, 'src'))
            manager = self.tools.manager()
            if manager:
                missing = self.tools.missing_packages(BUILD_DEPS[manager])
                if missing:
                    self.tools.install_packages(missing, 'the CRIU build dependencies')
            else:
                self.module.warn('No apt-get or dnf on this host: the CRIU build dependencies were not installed.')
            binary = self.tools.build(source_dir, os.path.join(workdir, 'build.log'))
            built = self.tools.version_of(binary)
            if not built or version_tuple(built) != version_tuple(version):
                raise InstallError('The source from %s built CRIU %s, not version %s: set version to the release '
                                   'of the tarball (or source_url to the tarball of %s). Nothing was installed.'
                                   % (url, built or '(unknown)', version, version))
            self.tools.install_binary(binary, self.target)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    # -- report -------------------------------------------------------------------------------

    def report(self):
        self.result.update(changed=self.changed, path=self.path)
        if self.module.check_mode and self.changed:
            self.result['version'] = self.predicted
            self.warn_if_shadowed(self.path)
            return self.result
        found = self.known or probe(self.module, self.path)
        self.result.update(version=found['version'], check=found['check'])
        if not found['version']:
            self.fail('No working CRIU at %s: `%s --version` failed.' % (self.path, self.path))
        if not version_at_least(found['version'], self.min_version):
            self.too_old('CRIU %s at %s' % (found['version'], self.path), found['version'])
        if not found['check']['ok']:
            self.fail('CRIU %s at %s fails `criu check` on kernel %s: %s. The kernel may lack a feature CRIU needs '
                      '(see check.errors).' % (found['version'], self.path, self.kernel,
                                               '; '.join(found['check']['errors'][:3])))
        for warning in found['check']['warnings']:
            self.module.warn('criu check: %s' % warning)
        self.warn_if_shadowed(self.path)
        return self.result

    def warn_if_shadowed(self, path):
        """Warn when runc would not run path (in check mode: would not once it is installed)."""
        search_path, origin = self.host.search_path()
        first = first_criu(search_path, path)
        if first is None:
            self.module.warn('%s is not the criu Docker will run: %s is not on the PATH of %s (%s), and no other '
                             'criu is. Add %s to that PATH.' % (path, os.path.dirname(path), origin, search_path,
                                                                os.path.dirname(path)))
            return
        if same_file(first, path):
            return
        self.module.warn('%s is not the criu Docker will run: on the PATH of %s (%s) the first criu is %s. '
                         'Put %s before %s on that PATH, or remove the other criu.'
                         % (path, origin, search_path, first, os.path.dirname(path), os.path.dirname(first)))


def main():
    run(CriuInstall, dict(
        method=dict(type='str', default='auto', choices=['auto', 'package', 'ppa', 'source']),
        min_version=dict(type='str'),
        version=dict(type='str', default='4.2.1'),
        source_url=dict(type='str'),
        source_checksum=dict(type='str'),
        prefix=dict(type='path', default='/usr/local'),
        ppa=dict(type='str', default='ppa:criu/ppa'),
    ))


if __name__ == '__main__':
    main()
