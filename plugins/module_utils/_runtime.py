# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""Checkpointing through the OCI runtime the engine runs (runc), with the engine left the owner.

The engine's own checkpoint passes CRIU's images through containerd's content store as a tarball
(about 40 MB/s here); `runc checkpoint` with the engine's runc state root writes them straight into
the engine's checkpoint place, an order of magnitude faster. The engine sees the container exit,
lists the checkpoint and restores it as if it had taken it.
"""

from __future__ import annotations

import json
import os

from ansible_collections.cryo.docker.plugins.module_utils._common import C_LOCALE
from ansible_collections.cryo.docker.plugins.module_utils._host import unix_socket_path
from ansible_collections.cryo.docker.plugins.module_utils._imagepath import is_slot_runtime


class RuntimeUnavailable(Exception):
    """Why the runtime path cannot be taken for a container (the reason, as a clause)."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def runtime_name(inspect, info):
    """The engine's name of the OCI runtime a container runs with."""
    return (inspect.get('HostConfig') or {}).get('Runtime') or info.get('DefaultRuntime') or 'runc'


def runtime_path(name, info):
    """The engine's path of a runtime: a container's image-path runtime (_imagepath) runs the stock runc, with
    its state where the stock runc keeps it, whether it is armed (runtimeType, no path) or not."""
    if is_slot_runtime(name):
        return ((info.get('Runtimes') or {}).get('runc') or {}).get('path') or 'runc'
    return ((info.get('Runtimes') or {}).get(name) or {}).get('path') or name


def find_runtime(host, docker_host, info, inspect, started_before_engine=None):
    """{name, binary, root, search_path, dockerd_pid} of the runc that runs this container for the engine
    at docker_host, or RuntimeUnavailable with the reason it cannot be used.

    info and inspect are the engine's /info and the container's inspect answers; started_before_engine
    is whether the container outlived an engine restart under live-restore."""
    if unix_socket_path(docker_host) is None:
        raise RuntimeUnavailable('the engine at %s is remote: the runtime path runs runc on the engine\'s host, '
                                 'next to its state' % docker_host)
    if any('rootless' in option for option in info.get('SecurityOptions') or []):
        raise RuntimeUnavailable('the engine runs rootless: its runc state and CRIU run in a user namespace '
                                 'this module does not enter')
    name = runtime_name(inspect, info)
    path = runtime_path(name, info)
    if os.path.basename(path) != 'runc':
        raise RuntimeUnavailable('the container runs with the runtime %s (%s), not runc: only runc\'s checkpoint '
                                 'is known to leave what the engine restores' % (name, path))
    if started_before_engine:
        raise RuntimeUnavailable('the container outlived an engine restart under live-restore, and its task is '
                                 'not owned by the current engine yet (restart it once)')
    try:
        runtime = host.runtime(docker_host, path, 'runc')
    except LookupError as exc:
        raise RuntimeUnavailable(str(exc))
    if not runtime['binary']:
        raise RuntimeUnavailable('no %s binary on the PATH of the engine\'s dockerd (%s)' % (path, runtime['search_path']))
    state = os.path.join(runtime['root'], inspect['Id'], 'state.json')
    if not os.path.isfile(state):
        raise RuntimeUnavailable('runc keeps no state for the container where this engine\'s layout puts it (%s): an '
                                 'unknown layout' % state)
    return runtime


def checkpoint_argv(runtime, container_id, image_path, leave_running):
    """runc's command line for a checkpoint of container_id into image_path, which is also CRIU's work
    directory (dump.log and stats-dump stay beside the images). runc reads /etc/criu/runc.conf itself."""
    argv = [runtime['binary'], '--root', runtime['root'], 'checkpoint', '--image-path', image_path,
            '--work-path', image_path]
    if leave_running:
        argv.append('--leave-running')
    return argv + [container_id]


def run_checkpoint(module, runtime, container_id, image_path, leave_running):
    """(rc, stdout, stderr) of runc's checkpoint, run with dockerd's PATH (the CRIU the engine would use)."""
    return module.run_command(checkpoint_argv(runtime, container_id, image_path, leave_running),
                              environ_update=dict(C_LOCALE, PATH=runtime['search_path']))


def runc_status(module, runtime, container_id):
    """runc's status of the container ('running', 'paused', ...; runc reads the cgroup freezer), or None when runc
    cannot tell."""
    rc, out, _err = module.run_command([runtime['binary'], '--root', runtime['root'], 'state', container_id],
                                       environ_update=dict(C_LOCALE, PATH=runtime['search_path']))
    if rc != 0:
        return None
    try:
        return json.loads(out).get('status')
    except (ValueError, AttributeError):
        return None


def thaw(module, runtime, container_id):
    """Thaw a container a checkpoint left frozen. CRIU freezes the container's cgroup for a dump and thaws it when
    the dump ends, failed or not; a CRIU that was killed (or crashed) never does, and the container stays frozen:
    running for the engine, which does not know it as paused, while none of its processes runs. runc sees the
    freezer and calls it paused; `runc resume` thaws it and its processes go on (CRIU's parasite code leaves them
    when CRIU's end closes its socket).

    None when it was not frozen; 'thawed'; or why it could not be thawed."""
    if runc_status(module, runtime, container_id) != 'paused':
        return None
    rc, out, err = module.run_command([runtime['binary'], '--root', runtime['root'], 'resume', container_id],
                                      environ_update=dict(C_LOCALE, PATH=runtime['search_path']))
    if rc != 0:
        return 'runc resume exited %s: %s' % (rc, ' '.join((err or out or '').split())[:300])
    status = runc_status(module, runtime, container_id)
    if status != 'running':
        return 'runc resume left it %s' % status
    return 'thawed'
