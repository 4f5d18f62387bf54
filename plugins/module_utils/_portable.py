# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""What the export (_export) and the import (_import) of portable checkpoint archives share: the CRIU the
engine runs, and the room they need. The archive's own format is _archive's; what recreates a container is
_containers'."""

from __future__ import annotations

from ansible_collections.cryo.docker.plugins.module_utils._common import C_LOCALE, ModuleError
from ansible_collections.cryo.docker.plugins.module_utils._criu import parse_version
from ansible_collections.cryo.docker.plugins.module_utils._host import Host, find_program
from ansible_collections.cryo.docker.plugins.module_utils._preflight import human_bytes

# Room kept free beyond what is written: file systems behave badly when full.
ROOM_MARGIN = 64 << 20


def engine_criu(module, docker_host, host=None):
    """(path, version) of the CRIU the engine's runc runs: the first `criu` on its dockerd's PATH."""
    search_path, _origin = (host or Host()).search_path(docker_host)
    criu = find_program('criu', search_path)
    if not criu:
        return None, None
    rc, out, _err = module.run_command([criu, '--version'], environ_update=C_LOCALE)
    return criu, parse_version(out) if rc == 0 else None


def room_error(what, directory, need, free):
    return ModuleError('Not enough room for %s in %s: about %s is needed, %s is free. Nothing was written; free some '
                       'space or choose another place.' % (what, directory, human_bytes(need), human_bytes(free)),
                       needed_bytes=need, free_bytes=free)
