# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this fragment is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

from __future__ import annotations


class ModuleDocFragment:
    """CRIU's options for one checkpoint or restore (plugins/module_utils/_criuconf.py)."""

    DOCUMENTATION = r"""
options:
  tcp_established:
    description:
      - CRIU's C(tcp-established) for this call - checkpoint and restore established TCP connections. A container
        with one cannot be checkpointed without it (the task fails, saying so, and the container keeps running).
      - A restored connection works only where its peer still holds it - the same host, or a move with the peer's
        cooperation.
      - Unset (the default) leaves what C(/etc/criu/runc.conf) says; V(false) turns it off for this call even where
        that file turns it on. The same holds for the options below.
    type: bool
  tcp_close:
    description:
      - CRIU's C(tcp-close) for this call - do not dump the state of established TCP connections, and restore them
        closed (the application sees them reset and reconnects).
    type: bool
  file_locks:
    description: CRIU's C(file-locks) for this call - checkpoint and restore files locked with C(flock) or C(fcntl).
    type: bool
  ext_unix_sk:
    description:
      - CRIU's C(ext-unix-sk) for this call - allow UNIX sockets connected to a peer outside the container.
      - V(false) only drops the host's C(ext-unix-sk) line for this call (CRIU has no C(no-ext-unix-sk)).
    type: bool
  link_remap:
    description: CRIU's C(link-remap) for this call - files deleted but still open are linked back to be dumped.
    type: bool
  manage_cgroups_mode:
    description: CRIU's C(manage-cgroups) mode for this call (runc's own default is V(soft)).
    type: str
    choices: [soft, full, strict, ignore]
notes:
  - The CRIU options (O(tcp_established), O(tcp_close), O(file_locks), O(ext_unix_sk), O(link_remap),
    O(manage_cgroups_mode)) reach CRIU through C(/etc/criu/runc.conf) on every path - the engine's API has no
    such option, runc's flags lack some, and CRIU lets that file override what runc asks. For the length of one
    checkpoint or restore, the module writes the host's file with the call's options added (atomically, under an
    exclusive lock), and puts the host's bytes back when the call ends. Calls without options of their own take
    the lock shared, so none runs CRIU with another call's options; the containers of one task (C(containers))
    with the same options share one rewrite. A call waits for the lock up to 15 minutes.
  - A run killed meanwhile leaves C(/etc/criu/runc.conf.cryo-host), the record of the host's file - the next
    call puts it back first (with a warning; a file changed since by someone else is kept). Checkpoints and
    restores started outside the collection (C(docker start --checkpoint), a warm container's start) read the
    file as it is at that moment.
  - A container whose C(org.criu.config) annotation names another file (runc then gives CRIU that one) is
    refused per-call options, before anything is done. So is a remote engine - the file is the engine host's.
"""
