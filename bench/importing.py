"""What the image-path benchmarks (restore_speed, warm_container, clones) share: a workload exported with
cryo.docker.docker_checkpoint_export and imported with cryo.docker.docker_checkpoint_import on the same engine,
so that the imported container has a runtime of its own (cryo-restore-<hex>) and restores through its image path
where the engine allows it (Docker 23 and later), and what they read of its counter and ports.

Not a benchmark (no run()): bench/NAME.py files import it as they import harness.
"""

import os
import uuid

from harness import BenchError, helpers, wait_for


def allow(network, unconfined=False):
    """docker_checkpoint_import's `allow` for a container of the harness: host_namespaces on the host network,
    security_options for seccomp unconfined (hold_and_count's)."""
    return (['host_namespaces'] if network == 'host' else []) + (['security_options'] if unconfined else [])


def clone_name(bench, kind):
    """A name as Bench.container gives them (bench-KIND-RUN-HEX): the imported container carries the source's
    label, so every run's cleanup finds it too."""
    return 'bench-%s-%s-%s' % (kind, bench.run_id, uuid.uuid4().hex[:4])


def export(bench, name, leave_running=False):
    """docker_checkpoint_export of a running container (method auto, the archive's defaults) into the run's work
    directory: (archive path, result)."""
    path = os.path.join(bench.workdir, '%s.tar.zst' % name)
    result, _wall = bench.ansible.module('docker_checkpoint_export', dict(
        container=name, checkpoint='golden', path=path, leave_running=leave_running))
    return path, result


def remove_archive(path):
    for name in (path, path + '.sig'):
        if name and os.path.exists(name):
            os.unlink(name)


def stop(bench, name):
    """Kill the container (its PID 1, a shell, ignores SIGTERM) and wait until the engine shows it stopped."""
    bench.engine.kill(name)
    wait_for(lambda: not bench.engine.inspect_container(name)['State'].get('Running'), 30, 0.02,
             '%s to stop' % name)


def host_port(result):
    """The host port of an import's first published port (container.bound_ports: [ip:]host:container/proto)."""
    bound = result['container'].get('bound_ports') or []
    if not bound:
        raise BenchError('%s publishes no port after its import: %s' % (result['container'].get('name'), bound))
    return int(bound[0].rsplit(':', 2)[-2])


def counter_runs(bench, name):
    """The counter's runs of consecutive numbers (tests/testbed/helpers.py runs): a restore starts a new run."""
    return helpers.runs(bench.counter_lines(name))


def new_run(bench, name, runs_before, timeout=30, length=2):
    """The first number of the counter's next run (one of `length` numbers at least) after runs_before runs."""
    found = []

    def started():
        found[:] = counter_runs(bench, name)
        return len(found) > runs_before and len(found[-1]) >= length
    wait_for(started, timeout, 0.1, 'a new run of the counter of %s' % name)
    return found[-1][0]
