# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""Can this host checkpoint and restore? The rules, as pure functions over facts.

Every rule returns one check: {name, status: pass|warn|fail, detail, remedy}. The facts come from
the engine's answers and from _host, which reads /proc, /sys and the file system; the rules never do.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.cryo.docker.plugins.module_utils._common import (
    HELD_RESTART_POLICIES,
    HOLDER_LABEL,
    container_state_reason,
)
from ansible_collections.cryo.docker.plugins.module_utils._cpu import cpu_name, instruction_features
from ansible_collections.cryo.docker.plugins.module_utils._criu import (
    min_version_for_kernel,
    version_at_least,
    version_tuple,
)

PASS, WARN, FAIL = 'pass', 'warn', 'fail'

# Kernel options CRIU cannot work without (y or m both do).
KERNEL_REQUIRED = (
    ('CONFIG_CHECKPOINT_RESTORE', 'checkpoint/restore support (kcmp, /proc/PID/map_files, prctl)'),
    ('CONFIG_NAMESPACES', 'namespaces'),
    ('CONFIG_UTS_NS', 'UTS namespaces'),
    ('CONFIG_IPC_NS', 'IPC namespaces'),
    ('CONFIG_PID_NS', 'PID namespaces'),
    ('CONFIG_NET_NS', 'network namespaces'),
    ('CONFIG_UNIX_DIAG', 'dumping unix sockets'),
    ('CONFIG_INET_DIAG', 'dumping TCP/UDP sockets'),
    ('CONFIG_PACKET_DIAG', 'dumping packet sockets'),
    ('CONFIG_NETLINK_DIAG', 'dumping netlink sockets'),
    ('CONFIG_INOTIFY_USER', 'dumping inotify watches'),
    ('CONFIG_FHANDLE', 'open_by_handle_at, used for inotify and fanotify'),
    ('CONFIG_EVENTFD', 'dumping eventfd'),
    ('CONFIG_EPOLL', 'dumping epoll'),
)
# Kernel options whose absence limits what can be done, without stopping a plain checkpoint.
KERNEL_OPTIONAL = (
    ('CONFIG_USER_NS', 'user namespaces: only containers of an engine with userns-remap need them'),
    ('CONFIG_MEM_SOFT_DIRTY', 'dirty-memory tracking: without it CRIU cannot pre-dump (incremental '
                              'checkpoints); a full checkpoint still works'),
)

# Engine releases whose restore is known to be broken. own_netns_only: only containers with a network
# namespace of their own (bridge, none, a user network) are affected; host and container:<holder>
# containers share a namespace the engine does not set up at restore, and restore.
NETNS_REASON = ('restoring a container that has its own network namespace (bridge, none or a user network) '
                'fails before CRIU runs ("bind-mount /proc/0/ns/net -> <exec-root>/netns/<id>: no such file or '
                'directory"): the engine sets the network namespace up after the task is created, and a '
                'restored task has no process yet; containers on the host network, or in the network '
                'namespace of another container, restore')
NETNS_REMEDY = ('Run such containers in the network namespace of a network holder (network_mode '
                'container:<holder>; cryo.docker.docker_network_holder creates and keeps one, with the '
                'networks and published ports), or on the host network; or run an engine without the bug: '
                'older than 28 (27.x, 26.0.1 and later 26.x, 25.0.4 and later, 24.x, 20.10).')
BROKEN_ENGINES = (
    dict(first=(25, 0, 0), last=(25, 0, 3), own_netns_only=False,
         reason='restoring a checkpoint fails ("failed to create task for container: content digest ...: '
                'not found"): a regression of 25.0 in how libcontainerd looks the checkpoint up in '
                'containerd\'s content store, fixed in 25.0.4',
         reference='moby/moby#47456 (fix), moby/moby#47466 (25.0.4 backport), moby/moby#42900 (report)',
         remedy='Upgrade the Docker Engine to 25.0.4 or later.'),
    dict(first=(26, 0, 0), last=(26, 0, 0), own_netns_only=True, reason=NETNS_REASON,
         reference='moby/moby 26.0.0 (network set up after task creation; reverted in 26.0.1)',
         remedy=NETNS_REMEDY),
    dict(first=(28, 0, 0), last=(29, 999, 999), own_netns_only=True, reason=NETNS_REASON,
         reference='containerd/containerd#12141, moby/moby#50750, checkpoint-restore/criu#2834 (CRIU CI '
                   'excludes Docker 28 and 29)',
         remedy=NETNS_REMEDY),
)
MIN_CONTAINERD = '1.5.0'

# How much free space a checkpoint needs, as a multiple of the memory it dumps (measured: 2 to 3 times:
# the engine passes CRIU's images through containerd's content store as a tarball).
SPACE_FACTOR_FAIL = 2
SPACE_FACTOR_WARN = 3

ENGINE_ROLE = 'the cryo.docker.engine role'
CRIU_ROLE = 'the cryo.docker.criu role'


def check(name, status, detail, remedy=''):
    return dict(name=name, status=status, detail=detail, remedy=remedy if status != PASS else '')


def count_statuses(checks):
    """(ready, counts): ready is true when no check failed."""
    counts = {PASS: 0, WARN: 0, FAIL: 0}
    for item in checks:
        counts[item['status']] += 1
    return counts[FAIL] == 0, counts


def human_bytes(value):
    value = float(value or 0)
    if value < 1024:
        return '%d B' % value
    for unit in ('KiB', 'MiB', 'GiB'):
        value /= 1024.0
        if value < 1024:
            return '%.1f %s' % (value, unit)
    return '%.1f TiB' % (value / 1024.0)


# -- kernel -------------------------------------------------------------------

def parse_kernel_config(text):
    """{'CONFIG_X': 'y'|'m'|'n'|value} from a kernel .config ('# CONFIG_X is not set' gives 'n')."""
    options = {}
    for line in (text or '').splitlines():
        line = line.strip()
        match = re.match(r'^# (CONFIG_\w+) is not set$', line)
        if match:
            options[match.group(1)] = 'n'
            continue
        match = re.match(r'^(CONFIG_\w+)=(.*)$', line)
        if match:
            options[match.group(1)] = match.group(2).strip('"')
    return options


def check_kernel_config(options, source, kernel_release):
    """Required options missing: fail; optional ones missing: warn; config unreadable: warn."""
    name = 'kernel config'
    if options is None:
        return [check(name, WARN,
                      'The configuration of kernel %s cannot be read (neither /proc/config.gz nor '
                      '/boot/config-%s exists), so its checkpoint/restore options were not checked; '
                      '"criu check" below still tests what CRIU needs.' % (kernel_release, kernel_release),
                      'Load the configs module (modprobe configs) to get /proc/config.gz, or install '
                      'the kernel\'s config file as /boot/config-%s.' % kernel_release)]
    out = []
    missing = [(opt, why) for opt, why in KERNEL_REQUIRED if options.get(opt, 'n') not in ('y', 'm')]
    if missing:
        out.append(check(name, FAIL,
                         'Kernel %s lacks what CRIU needs (%s): %s.' % (
                             kernel_release, source, '; '.join('%s (%s)' % item for item in missing)),
                         'Boot a kernel built with %s (distribution kernels of Debian, Ubuntu, '
                         'Fedora and RHEL have them).' % ', '.join(opt for opt, _why in missing)))
    else:
        out.append(check(name, PASS, 'Kernel %s has checkpoint/restore, namespaces and the socket '
                                     'diagnostics CRIU needs (%s).' % (kernel_release, source)))
    for opt, why in KERNEL_OPTIONAL:
        if options.get(opt, 'n') not in ('y', 'm'):
            out.append(check('kernel %s' % opt, WARN, '%s is not set: %s.' % (opt, why),
                             'Nothing to do for plain checkpoints; boot a kernel with %s if you '
                             'need it.' % opt))
    return out


# -- CRIU ---------------------------------------------------------------------

def check_criu_installed(criu_path, search_path, explicit, origin=None):
    """search_path: the directories runc searches (see _host.Host.search_path), origin: whose PATH it is."""
    name = 'criu installed'
    whose = ', %s' % origin if origin else ''
    if criu_path:
        how = 'given as criu_path' if explicit else 'first on the PATH runc uses%s: %s' % (whose, ':'.join(search_path))
        return check(name, PASS, 'CRIU is at %s (%s).' % (criu_path, how))
    if explicit:
        return check(name, FAIL, 'criu_path %s is not an executable file.' % explicit,
                     'Point criu_path at the criu binary, or install CRIU with %s.' % CRIU_ROLE)
    return check(name, FAIL, 'No criu binary on the PATH runc uses (%s%s), so the engine cannot '
                             'checkpoint anything.' % (':'.join(search_path), whose),
                 'Install CRIU with %s (it builds a CRIU recent enough for this kernel).' % CRIU_ROLE)


def check_criu_run(criu_path, result):
    """`criu check` understood (result from _criu.parse_check): errors fail, warnings warn."""
    name = 'criu check'
    if result['ok'] and not result['warnings']:
        return check(name, PASS, '"%s check" says "Looks good."' % criu_path)
    if result['ok']:
        return check(name, WARN, '"%s check" passed with warnings: %s' % (criu_path, '; '.join(result['warnings'])),
                     'Plain checkpoints work; the warnings name kernel features that some '
                     'processes need (run "criu check --all" for details).')
    return check(name, FAIL, '"%s check" failed (exit code %s): %s' % (
        criu_path, result['rc'], '; '.join(result['errors'] or ['no "Looks good." in its output'])),
        'Install a CRIU that supports this kernel with %s, and make sure the module runs as root.'
        % CRIU_ROLE)


def check_criu_version(criu_path, version, kernel_release):
    name = 'criu version'
    minimum, reason = min_version_for_kernel(kernel_release)
    if not version:
        return check(name, FAIL, 'Cannot tell the version of %s ("criu --version" printed no '
                                 '"Version:" line).' % criu_path,
                     'Reinstall CRIU with %s.' % CRIU_ROLE)
    if version_at_least(version, minimum):
        return check(name, PASS, 'CRIU %s at %s is recent enough for kernel %s (needs >= %s).'
                     % (version, criu_path, kernel_release, minimum))
    return check(name, FAIL, 'CRIU %s at %s is too old for kernel %s: it needs >= %s. %s.'
                 % (version, criu_path, kernel_release, minimum, reason),
                 'Install CRIU >= %s with %s (criu_method: source builds it), and make sure it comes '
                 'first on the PATH runc uses (/usr/local/sbin comes before /usr/sbin), or remove the '
                 'old one.' % (minimum, CRIU_ROLE))


# -- Docker Engine --------------------------------------------------------------

def image_store(info):
    """'containerd' when the engine keeps images in containerd's snapshotters (Docker 29's default,
    "containerd-snapshotter" before), 'graphdriver' otherwise; None when /info does not say."""
    if not info or not info.get('Driver'):
        return None
    status = dict(tuple(pair) for pair in info.get('DriverStatus') or [] if len(pair) == 2)
    return 'containerd' if status.get('driver-type') == 'io.containerd.snapshotter.v1' else 'graphdriver'


def engine_components(version, info):
    """{'engine', 'containerd', 'runc', 'experimental', ...} from the engine's /version and /info answers."""
    version = version or {}
    info = info or {}
    components = {c.get('Name', '').lower(): c for c in version.get('Components') or []}
    experimental = version.get('Experimental')
    if experimental is None:
        experimental = info.get('ExperimentalBuild')
    out = dict(
        engine=version.get('Version') or info.get('ServerVersion'),
        api_version=version.get('ApiVersion'),
        containerd=(components.get('containerd') or {}).get('Version'),
        runc=(components.get('runc') or {}).get('Version'),
        experimental=bool(experimental) if not isinstance(experimental, str) else experimental == 'true',
        live_restore=bool(info.get('LiveRestoreEnabled')),
        cgroup_version=str(info['CgroupVersion']) if info.get('CgroupVersion') else None,
        cgroup_driver=info.get('CgroupDriver'),
        data_root=info.get('DockerRootDir'),
        storage_driver=info.get('Driver'),
        image_store=image_store(info),
    )
    # Older engines name containerd and runc only by commit in /info.
    if not out['containerd']:
        out['containerd'] = (info.get('ContainerdCommit') or {}).get('ID') or None
    if not out['runc']:
        out['runc'] = (info.get('RuncCommit') or {}).get('ID') or None
    return out


def check_reboot(init):
    """Whether ansible.builtin.reboot can reboot the host: on systemd its `shutdown -r` schedules the reboot with
    logind over D-Bus, and fails with "Failed to connect to bus" where the D-Bus system bus is missing."""
    name = 'host reboot'
    if init['systemd'] and not init['dbus']:
        return check(name, WARN, 'systemd runs this host without the D-Bus system bus (no /run/dbus/system_bus_socket): '
                                 'the `shutdown -r` that ansible.builtin.reboot runs fails with "Failed to connect to '
                                 'bus", so a maintenance reboot would stop after its checkpoints.',
                     'Install and start D-Bus (apt-get install dbus; every Debian and Ubuntu server install has it), '
                     'or reboot another way (maintenance_action=tasks).')
    if init['systemd']:
        return check(name, PASS, 'systemd with the D-Bus system bus: ansible.builtin.reboot can reboot this host.')
    return check(name, PASS, 'PID 1 is %s, not systemd: ansible.builtin.reboot uses its shutdown command.'
                 % (init['pid1'] or 'unknown'))


def check_engine_reachable(host, error, engine_version=None, api_version=None):
    name = 'engine reachable'
    if error:
        return check(name, FAIL, 'Cannot talk to the Docker Engine at %s: %s' % (host, error),
                     'Start dockerd (%s installs and starts it) and point docker_host at its socket.'
                     % ENGINE_ROLE)
    return check(name, PASS, 'Docker Engine %s at %s (API %s).' % (engine_version, host, api_version))


def check_experimental(host, experimental):
    name = 'engine experimental'
    if experimental:
        return check(name, PASS, 'The engine at %s runs in experimental mode: its checkpoint endpoints '
                                 'exist.' % host)
    return check(name, FAIL, 'The engine at %s is not in experimental mode, and checkpoint and restore '
                             'exist only there (HTTP 501 otherwise).' % host,
                 'Run %s, or set "experimental": true in the engine\'s daemon.json '
                 '(/etc/docker/daemon.json) and restart dockerd.' % ENGINE_ROLE)


def broken_engine(engine_version):
    """The BROKEN_ENGINES entry that engine_version falls in, or None."""
    have = version_tuple(engine_version)
    if have is None:
        return None
    for entry in BROKEN_ENGINES:
        if entry['first'] <= have <= entry['last']:
            return entry
    return None


def has_own_netns(network_mode):
    """Whether a container with this NetworkMode gets a network namespace of its own from the engine."""
    mode = network_mode or 'default'
    return not (mode == 'host' or mode.startswith('container:'))


def unrestorable(engine_version, network_mode):
    """The BROKEN_ENGINES entry that keeps this engine from restoring a container with this network
    mode, or None when nothing known does. The one rule every module asks before it stops a container."""
    entry = broken_engine(engine_version)
    if entry is None or (entry['own_netns_only'] and not has_own_netns(network_mode)):
        return None
    return entry


def unrestorable_detail(engine_version, network_mode, entry):
    """What and why, for a container this engine cannot restore."""
    what = ('a container with its own network namespace (network %s)' % (network_mode or 'default')
            if entry['own_netns_only'] else 'any checkpoint')
    return 'Docker Engine %s cannot restore %s: %s. See %s.' % (
        engine_version, what, entry['reason'], entry['reference'])


def unrestorable_msg(engine_version, network_mode, entry):
    """What, why and what to do, for a container this engine cannot restore."""
    return '%s %s' % (unrestorable_detail(engine_version, network_mode, entry), entry['remedy'])


def check_engine_version(engine_version):
    name = 'engine version'
    if not engine_version:
        return check(name, WARN, 'The engine did not say its version.', 'Check "docker version".')
    entry = broken_engine(engine_version)
    if entry is None:
        return check(name, PASS, 'Docker Engine %s has no known checkpoint/restore breakage.' % engine_version)
    if entry['own_netns_only']:
        return check(name, WARN, 'Docker Engine %s: %s. See %s.' % (engine_version, entry['reason'], entry['reference']),
                     entry['remedy'])
    return check(name, FAIL, 'Docker Engine %s: %s. See %s.' % (engine_version, entry['reason'], entry['reference']),
                 entry['remedy'])


def check_containerd_version(containerd_version):
    name = 'containerd version'
    if not containerd_version or version_tuple(containerd_version) is None:
        return check(name, WARN, 'The engine did not say which containerd it uses (%s).' % containerd_version,
                     'Check "containerd --version"; containerd must be >= %s.' % MIN_CONTAINERD)
    if version_at_least(containerd_version, MIN_CONTAINERD):
        return check(name, PASS, 'containerd %s (>= %s).' % (containerd_version, MIN_CONTAINERD))
    return check(name, FAIL, 'containerd %s is older than %s: restoring a checkpoint reports success but '
                             'the container silently starts from zero (checkpoint-restore/criu#1223, '
                             'docker/for-linux#1192; fixed in containerd 1.5.0).'
                 % (containerd_version, MIN_CONTAINERD),
                 'Upgrade containerd to %s or later (Debian 12\'s docker.io brings 1.6.20).' % MIN_CONTAINERD)


# -- live-restore, space ----------------------------------------------------------

def parse_timestamp(text):
    """Seconds since the epoch from the engine's RFC 3339 times ('2026-11-29T15:25:01.123456789Z'), or None."""
    match = re.match(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$', text or '')
    if not match:
        return None
    base, fraction, zone = match.groups()
    when = datetime.datetime.strptime(base, '%Y-%m-%dT%H:%M:%S')
    offset = datetime.timedelta(0)
    if zone and zone != 'Z':
        sign = 1 if zone[0] == '+' else -1
        offset = sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    when = when.replace(tzinfo=datetime.timezone.utc) - offset
    seconds = when.timestamp()
    if when.year <= 1:
        return None  # '0001-01-01T00:00:00Z': never started
    return seconds + (float('0.' + fraction) if fraction else 0.0)


def started_before(container_started, engine_started, slack=1.0):
    """True when a container started before the engine process (it outlived an engine restart)."""
    if container_started is None or engine_started is None:
        return False
    return container_started + slack < engine_started


def check_live_restore(live_restore, engine, containers):
    """containers: [{name, started_at (epoch)}] of the running containers.

    engine: {pid, started_at} of the dockerd process, or None when it cannot be found.
    """
    name = 'live-restore'
    if not live_restore:
        return check(name, PASS, 'live-restore is off: every running container was started by the '
                                 'current engine process.')
    if not engine or engine.get('started_at') is None:
        return check(name, WARN, 'live-restore is on, and the dockerd process of this engine was not '
                                 'found on this host, so containers that outlived an engine restart '
                                 'cannot be named (they cannot be checkpointed).',
                     'Run the module on the engine\'s host, or restart the containers that were '
                     'started before the last engine restart.')
    old = sorted(c['name'] for c in containers if started_before(c.get('started_at'), engine['started_at']))
    if not old:
        return check(name, PASS, 'live-restore is on; every running container was started by the current '
                                 'engine process (dockerd pid %s).' % engine['pid'])
    return check(name, WARN, 'live-restore is on, and %d running container(s) were started before the '
                             'current engine process (dockerd pid %s) and cannot be checkpointed until '
                             'restarted ("invalid task checkpoint option"): %s.'
                 % (len(old), engine['pid'], ', '.join(old)),
                 'Restart those containers once (docker restart NAME) under the current engine.')


def check_free_space(path, free_bytes, memory_bytes, containers_counted):
    name = 'free space'
    if free_bytes is None:
        return check(name, WARN, 'Cannot measure the free space at %s.' % path,
                     'Run the module on the engine\'s host, and give checkpoint_dir as an absolute path.')
    need_fail = SPACE_FACTOR_FAIL * memory_bytes
    need_warn = SPACE_FACTOR_WARN * memory_bytes
    detail = ('%s free at %s for %s of memory in %d running container(s) (a checkpoint needs about %d '
              'to %d times the memory, temporarily)' % (
                  human_bytes(free_bytes), path, human_bytes(memory_bytes), containers_counted,
                  SPACE_FACTOR_FAIL, SPACE_FACTOR_WARN))
    if free_bytes >= need_warn:
        return check(name, PASS, detail + '.')
    remedy = ('Free space at %s, or give checkpoint_dir on a file system with at least %s free.'
              % (path, human_bytes(need_warn)))
    if free_bytes >= need_fail:
        return check(name, WARN, detail + ': tight, %s recommended.' % human_bytes(need_warn), remedy)
    return check(name, FAIL, detail + ': not enough, at least %s needed.' % human_bytes(need_fail), remedy)


# The file system types whose files live in memory.
MEMORY_FSTYPES = ('tmpfs',)
TMPDIR_OPTION = 'engine_containerd_tmpdir of %s' % ENGINE_ROLE


def containerd_tmpdir_where(tmpdir):
    """'containerd (pid N, ...) unpacks ... in DIR (why DIR)', for the detail of check_containerd_tmpdir."""
    whose = 'started by dockerd' if tmpdir['managed'] else 'at %s' % tmpdir['containerd_address']
    why = ('from its %s' % tmpdir['set_by'] if tmpdir['set_by']
           else 'the default: neither XDG_RUNTIME_DIR nor TMPDIR is set in its environment')
    return ('containerd (pid %s, %s) unpacks every checkpoint the engine restores, and writes every checkpoint the '
            'engine takes, in a directory it makes in %s (%s)' % (tmpdir['containerd_pid'], whose, tmpdir['path'], why))


def containerd_tmpdir_remedy(tmpdir, what):
    """What to do about containerd's temporary directory: what, then the engine role's option; XDG_RUNTIME_DIR
    first when it is what sets the directory (containerd reads it before TMPDIR)."""
    first = ('containerd takes XDG_RUNTIME_DIR before TMPDIR: remove it from containerd\'s environment (the unit or '
             'script that starts it), then ' if tmpdir['set_by'] == 'XDG_RUNTIME_DIR' else '')
    return ('%s%s, or point containerd\'s TMPDIR at a directory on disk with room, with %s (for example '
            '/var/lib/containerd-tmp: the role creates it, puts it in the environment of containerd and dockerd, and '
            'restarts them; while containers run only with engine_allow_restart).' % (first, what, TMPDIR_OPTION))


def check_containerd_tmpdir(docker_host, tmpdir, largest):
    """Whether the temporary directory of the engine's containerd has room for the largest checkpoint.

    tmpdir: _host.Host.containerd_tmpdir (None: that containerd is not a process on this host); largest: (name,
    resident memory in bytes) of the largest running container counted, or None. A checkpoint is about as large
    as the memory it dumps. Too little room warns: a tmpfs (Debian 13's and Fedora's /tmp) holds the checkpoint
    in RAM, and a restore that does not fit fails."""
    name = 'containerd tmpdir'
    if tmpdir is None:
        return check(name, WARN, 'The containerd serving the engine at %s was not found on this host (the process '
                                 'that holds its socket), so the directory where it unpacks checkpoints to restore '
                                 'them was not checked.' % docker_host,
                     'Run the module as root on the engine\'s host.')
    where = containerd_tmpdir_where(tmpdir)
    if not tmpdir['exists']:
        return check(name, FAIL, '%s, which does not exist: every restore and every checkpoint through the engine '
                                 'fails (mkdir %s/ctrd-checkpoint...: no such file or directory).'
                     % (where, tmpdir['path']),
                     containerd_tmpdir_remedy(tmpdir, 'Create %s (mode 0700)' % tmpdir['path']))
    if tmpdir['free'] is None:
        return check(name, WARN, '%s; its free space cannot be measured.' % where,
                     'Run the module as root on the engine\'s host.')
    in_memory = tmpdir['fstype'] in MEMORY_FSTYPES
    found = ('a %s in memory' % tmpdir['fstype'] if in_memory else 'on %s' % (tmpdir['fstype'] or 'a file system'))
    found += ' mounted on %s (%s free of %s)' % (tmpdir['mount_point'], human_bytes(tmpdir['free']),
                                                 human_bytes(tmpdir['size']))
    if largest is None:
        return check(name, PASS, '%s: %s; no running container counted.' % (where, found))
    need = '%s, the largest running container counted, has %s of memory, about the size of its checkpoint' % (
        largest[0], human_bytes(largest[1]))
    if tmpdir['free'] >= largest[1]:
        held = ': while it is restored, the checkpoint takes that much RAM' if in_memory else ''
        return check(name, PASS, '%s: %s; %s%s.' % (where, found, need, held))
    if in_memory:
        return check(name, WARN, '%s: %s; %s: its restore would fill the tmpfs, taking that much RAM, and fail.'
                     % (where, found, need),
                     containerd_tmpdir_remedy(tmpdir, 'Give the tmpfs on %s at least %s' % (
                         tmpdir['mount_point'], human_bytes(largest[1] - tmpdir['free'] + tmpdir['size']))))
    return check(name, WARN, '%s: %s; %s: its restore would fill the file system and fail.' % (where, found, need),
                 containerd_tmpdir_remedy(tmpdir, 'Free space on %s' % tmpdir['mount_point']))


# -- containers -------------------------------------------------------------------

def label_matches(labels, selector):
    """A selector `key` matches a container carrying that label; `key=value` needs the value too."""
    key, sep, value = selector.partition('=')
    return key in labels and (not sep or labels[key] == value)


def labels_match(labels, include, exclude):
    labels = labels or {}
    return (all(label_matches(labels, sel) for sel in include or [])
            and not any(label_matches(labels, sel) for sel in exclude or []))


def mount_problems(mounts, source_kind):
    """What in a container's mounts CRIU cannot carry through a checkpoint.

    mounts: the container's inspect Mounts; source_kind(path) -> 'socket'|'char'|'block'|'dir'|'file'|None.
    runc hands every bind mount to CRIU as an external mount, so a bind mount as such is fine; the
    trouble is what the processes hold open through it.
    """
    problems = []
    for mount in mounts or []:
        source = mount.get('Source') or ''
        dest = mount.get('Destination') or ''
        if mount.get('Type') != 'bind':
            continue
        kind = source_kind(source) if source else None
        if kind == 'socket':
            problems.append('%s is a bind-mounted socket (%s): a connection through it to a process outside '
                            'the container cannot be dumped (CRIU: external unix socket)' % (dest, source))
        elif kind in ('char', 'block') or source == '/dev' or source.startswith('/dev/'):
            problems.append('%s is a host device (%s): CRIU cannot save the state of a device the '
                            'processes hold open, and the restore needs the same device' % (dest, source))
        elif source in ('/proc', '/sys') or source.startswith(('/proc/', '/sys/')):
            problems.append('%s is the host\'s %s: files open there belong to the host and cannot be '
                            'restored' % (dest, source))
        if mount.get('Propagation') in ('shared', 'rshared'):
            problems.append('%s has %s mount propagation: CRIU restores external mounts as private, and '
                            'mounts made under it afterwards are not carried' % (dest, mount['Propagation']))
    return problems


# Open files CRIU cannot dump, by how /proc/PID/fd shows them: (target, what it is, what to do).
UNDUMPABLE_FILES = (
    ('anon_inode:[io_uring]', 'an io_uring instance (asynchronous I/O rings shared with the kernel)',
     'Configure the application not to use io_uring (MariaDB: innodb_use_native_aio=0; QEMU: aio=threads; '
     'liburing programs: their fallback to thread-pool I/O), or leave the container out of checkpoints '
     '(a label and exclude_labels) and restart it cold.'),
)


def undumpable_files(open_files):
    """[(target, what, remedy, ['comm (pid N)', ...])] of the open files CRIU cannot dump.

    open_files: [(pid, command name, /proc/PID/fd target)] of a container's processes (_host.open_files).
    """
    out = []
    for target, what, remedy in UNDUMPABLE_FILES:
        holders = sorted({'%s (pid %s)' % (comm, pid) for pid, comm, link in open_files if link == target})
        if holders:
            out.append((target, what, remedy, holders))
    return out


def check_open_files(label, open_files):
    """One check: whether a running container's processes hold a file CRIU cannot dump."""
    found = undumpable_files(open_files)
    if not found:
        return check(label + ': open files', PASS, 'No open file CRIU cannot dump (%d open file(s)).'
                     % len(open_files))
    detail = '; '.join('%s holds %s (%s in /proc/PID/fd): CRIU cannot dump it, so a checkpoint would fail '
                       '(its parasite cannot pass the file out: "send_fds failed (-22)" and "Can\'t retrieve FDs '
                       'from socket" in criu-dump.log)' % (', '.join(holders), what, target)
                       for target, what, _remedy, holders in found)
    return check(label + ': open files', FAIL, detail + '.', ' '.join(sorted({f[2] for f in found})))


CAP_SYS_RESOURCE = 24


def check_process_users(label, users, engine_caps):
    """One check: whether CRIU may read every process's resource limits.

    CRIU dumps each process's rlimits with prlimit(2), which for a process whose uids or gids are not
    all CRIU's own (root) needs CAP_SYS_RESOURCE; CRIU has what the engine's dockerd has (runc runs it
    under the engine's containerd). users: [(pid, comm, uids, gids)] (_host.container_users);
    engine_caps: dockerd's effective capabilities (None: unknown, not checked)."""
    others = ['%s (pid %s, uid %s)' % (comm, pid, uids[0]) for pid, comm, uids, gids in users
              if set(uids) | set(gids) != {0}]
    if engine_caps is None or engine_caps & (1 << CAP_SYS_RESOURCE) or not others:
        return check(label + ': process users', PASS,
                     'CRIU can read the resource limits of every process (%d process(es)).' % len(users))
    return check(label + ': process users', FAIL,
                 '%s run(s) as another user than root, and the engine runs without CAP_SYS_RESOURCE '
                 '(CapEff %x): CRIU cannot read their resource limits and the checkpoint would fail '
                 '("Can\'t get rlimit 0: Operation not permitted" in criu-dump.log).'
                 % (', '.join(others), engine_caps),
                 'Run the engine with CAP_SYS_RESOURCE (a host, VM or sandbox that keeps every capability of '
                 'root), or run the container\'s processes as root (its USER and the application\'s own '
                 'user setting, for nginx `user root;`).')


def check_container(name, inspect, engine_version, live_restore, engine_started, source_kind, error=None,
                    open_files=None, users=None, engine_caps=None):
    """Checks for one container from its inspect data; name as the operator gave it. open_files:
    [(pid, comm, target)] and users [(pid, comm, uids, gids)] of its processes when the host can read
    them (None: not checked); engine_caps: the effective capabilities of the engine's dockerd."""
    label = 'container %s' % name
    if inspect is None:
        return [check(label, FAIL, error or 'Container %s does not exist.' % name,
                      'Check the name or id (docker ps -a).')]
    out = []
    state = inspect.get('State') or {}
    host_config = inspect.get('HostConfig') or {}
    config = inspect.get('Config') or {}

    reason = container_state_reason(name, state)
    if reason is not None:
        # What docker_checkpoint would refuse: named here, before anything is stopped.
        out.append(check(label + ': running', FAIL, 'Container %s is %s (%s): it cannot be checkpointed now.'
                         % (name, state.get('Status'), reason[0]), reason[1]))
    elif state.get('Running'):
        out.append(check(label + ': running', PASS, 'Container %s is running (pid %s).' % (name, state.get('Pid'))))
    else:
        out.append(check(label + ': running', FAIL,
                         'Container %s is %s: only a running container can be checkpointed.'
                         % (name, state.get('Status', 'not running')),
                         'Start it (docker start %s), or restore it from one of its checkpoints.' % name))

    policy = (host_config.get('RestartPolicy') or {}).get('Name') or 'no'
    if policy in HELD_RESTART_POLICIES:
        out.append(check(label + ': restart policy', PASS,
                         'Restart policy %s will be held: docker_checkpoint sets it to "no" before the '
                         'checkpoint (or the engine would cold-start the container right after it) and '
                         'docker_restore puts it back.' % policy))
    else:
        out.append(check(label + ': restart policy', PASS, 'Restart policy %s: nothing to hold.' % policy))

    if config.get('Tty'):
        out.append(check(label + ': tty', PASS,
                         'Has a TTY: checkpoint and restore keep it (CRIU restores the pseudo-terminal).'))

    if host_config.get('Privileged'):
        out.append(check(label + ': privileged', WARN,
                         'Runs privileged: it sees every host device and can mount anything, and CRIU '
                         'fails on what it cannot dump (open devices, mounts made inside).',
                         'Run it without --privileged, with only the capabilities and devices it needs; '
                         'or test a checkpoint with leave_running first.'))

    network = host_config.get('NetworkMode') or 'default'
    entry = unrestorable(engine_version, network)
    if (config.get('Labels') or {}).get(HOLDER_LABEL) == 'true':
        out.append(check(label + ': network', PASS,
                         'A network holder (label %s): it owns the network namespace of the containers that join it, '
                         'is never checkpointed, and is started afresh before they are restored.' % HOLDER_LABEL))
    elif entry is not None and entry['own_netns_only']:
        out.append(check(label + ': network', FAIL, 'Has its own network namespace (%s) on Docker Engine %s: %s. '
                                                    'See %s.' % (network, engine_version, entry['reason'],
                                                                 entry['reference']), entry['remedy']))
    elif network == 'host':
        out.append(check(label + ': network', WARN,
                         'Uses the host network: its sockets are the host\'s. Listening ports must still be '
                         'free at restore, and established TCP connections need tcp-established in '
                         '/etc/criu/runc.conf.',
                         'Keep its ports free until the restore; set tcp-established through '
                         'cryo.docker.criu if it holds TCP connections.'))
    elif network.startswith('container:'):
        out.append(check(label + ': network', PASS,
                         'Joins the network namespace of container %s (a network holder): it restores into that '
                         'namespace, which must be running at restore.' % network[len('container:'):]))
    else:
        out.append(check(label + ': network', PASS, 'Network mode %s.' % network))

    problems = mount_problems(inspect.get('Mounts'), source_kind)
    for device in host_config.get('Devices') or []:
        problems.append('%s is a host device (--device %s): CRIU cannot save the state of a device'
                        % (device.get('PathInContainer'), device.get('PathOnHost')))
    if problems:
        out.append(check(label + ': mounts', WARN, '; '.join(problems) + '.',
                         'Close what is held open through these mounts before the checkpoint, or drop them; '
                         'test with a checkpoint with leave_running first.'))
    else:
        out.append(check(label + ': mounts', PASS, 'No mounts CRIU cannot handle (%d mount(s)).'
                         % len(inspect.get('Mounts') or [])))

    if open_files is not None and state.get('Running'):
        out.append(check_open_files(label, open_files))
    if users is not None and state.get('Running'):
        out.append(check_process_users(label, users, engine_caps))

    if live_restore and state.get('Running') and started_before(parse_timestamp(state.get('StartedAt')),
                                                                engine_started):
        out.append(check(label + ': engine restart', FAIL,
                         'Started before the current engine process and kept alive by live-restore: it '
                         'cannot be checkpointed ("invalid task checkpoint option") until restarted.',
                         'Restart it once (docker restart %s).' % name))
    return out


BUILTIN_NETWORKS = ('default', 'bridge', 'host', 'none')


def check_restore_network(network, engine_version, found):
    """The check `restore network NETWORK` for a container that is going to be restored on this engine from
    elsewhere (an archive of another host), before anything is frozen there.

    network: its NetworkMode (default, bridge, host, none, a user network, container:NAME) or another
    network it is connected to; found: for container:NAME, the State of container NAME on this engine (None
    when there is none), for a user network whether this engine has it; not read otherwise."""
    name = 'restore network %s' % network
    entry = unrestorable(engine_version, network)
    if entry is not None:
        return check(name, FAIL, unrestorable_detail(engine_version, network, entry), entry['remedy'])
    if network.startswith('container:'):
        holder = network[len('container:'):]
        if found is None or not found.get('Running'):
            return check(name, FAIL, 'Container %s, whose network namespace it joins, %s on this engine: the restore '
                                     'needs that namespace.'
                         % (holder, 'does not exist' if found is None else 'is not running (%s)' % found.get('Status')),
                         'Create and start a network holder named %s here first (cryo.docker.docker_network_holder, '
                         'with the networks and published ports the container needs).' % holder)
        return check(name, PASS, 'Joins the network namespace of container %s, which runs here.' % holder)
    if network in BUILTIN_NETWORKS:
        return check(name, PASS, 'Network %s: nothing known keeps Docker Engine %s from restoring it.'
                     % (network, engine_version))
    if not found:
        return check(name, FAIL, 'Network %s does not exist on this engine: the container cannot be created here.'
                     % network,
                     'Create it first (docker network create %s, with the subnet the container\'s addresses need).'
                     % network)
    return check(name, PASS, 'Network %s exists here.' % network)


CPU_FLAG_RE = re.compile(r'[a-z0-9_]{1,64}')


def check_restore_cpu(flags, cpu):
    """The check `restore cpu` for containers checkpointed on a CPU with these flags (/proc/cpuinfo's, of the host
    they come from) that are going to be restored here, before anything is frozen there: this CPU (cpu: _cpu.describe
    of this host's /proc/cpuinfo, None when it cannot be read) has every instruction-set feature among them that
    CRIU's cpuinfo check compares (_cpu)."""
    name = 'restore cpu'
    bad = [flag for flag in flags if not (isinstance(flag, str) and CPU_FLAG_RE.fullmatch(flag))]
    if bad:
        return check(name, FAIL, 'restore_cpu_flags holds %r, which is no CPU feature flag (a word of lower-case '
                                 'letters, digits and underscores, as /proc/cpuinfo lists them).' % (str(bad[0])[:80],),
                     'Give the flags of the source host\'s CPU as checkpoint_preflight reports them there (facts.cpu.flags).')
    wanted = instruction_features(flags)
    if cpu is None:
        return check(name, WARN, 'The CPU of this host cannot be read (/proc/cpuinfo names no flags), so it was not '
                                 'compared with the source\'s.',
                     'docker_checkpoint_import still runs criu cpuinfo check against the CPU the archive records.')
    missing = sorted(set(wanted) - set(cpu['flags']))
    if missing:
        return check(name, FAIL, 'This host\'s CPU (%s) lacks %s, which the CPU the containers were checkpointed on '
                                 'has: a restored process that uses them dies with SIGILL (podman#17496), and '
                                 'docker_checkpoint_import would refuse their archive.' % (cpu_name(cpu), ', '.join(missing)),
                     'Restore them on a host whose CPU has these features (or checkpoint them on a host with the '
                     'features of the oldest CPU they may move to). If you know the processes use none of them: '
                     'cpu_check: none on the import (move_cpu_check: none for cryo.docker.move_container).')
    return check(name, PASS, 'This host\'s CPU has the %d instruction-set features of the source\'s that CRIU\'s '
                             'check compares.' % len(wanted))
