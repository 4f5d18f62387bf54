"""cryo.docker.setup over SSH against a real Debian host (systemd, cgroup v2, AppArmor, Debian's Docker and
CRIU, Docker's experimental mode off as Debian ships it).

The playbook runs twice (the `setup_runs` fixture); each test judges one outcome: the first run passes, the
engine role restarted Docker through systemd once and only once, experimental mode is on, the criu role kept
Debian's CRIU and said why, preflight finds the host ready with cgroup v2 and the systemd cgroup driver, and
the second run changes nothing.
"""


def test_setup_passes(setup_runs):
    first = setup_runs[0]
    assert first.proc.returncode == 0 and first.recap.get('failed') == 0, first.output


def test_second_setup_changes_nothing(setup_runs):
    second = setup_runs[1]
    assert second.proc.returncode == 0 and second.recap.get('changed') == 0, second.output


def test_engine_role_restarted_docker_through_systemd_once(setup_runs):
    first, second = setup_runs
    # systemd's own record of when docker.service last became active: moved by the first run's restart
    # (a dockerd restarted behind systemd's back would not move it), not by the second run.
    assert (first.docker_before != first.docker_after and second.docker_before == second.docker_after
            == first.docker_after), (first.docker_before, first.docker_after, second.docker_after)


def test_experimental_mode_on(setup_runs, guest):
    assert setup_runs[0].results, setup_runs[0].output
    assert guest.run("docker version --format '{{.Server.Experimental}}'", timeout=60).stdout.strip() == 'true'


def test_criu_role_kept_debians_criu_and_says_why(setup_runs):
    results = setup_runs[0].results
    assert results, setup_runs[0].output
    install = results['criu_install']
    # Debian's package (/usr/sbin/criu) is new enough for Debian's kernel: kept, not replaced by a build.
    assert (install['method'] == 'none' and install['path'] == '/usr/sbin/criu'
            and 'works and is new enough' in install.get('reason', '')), install


def test_preflight_ready(setup_runs):
    results = setup_runs[0].results
    assert results, setup_runs[0].output
    preflight = results['preflight']
    assert preflight['ready'] and preflight['summary']['fail'] == 0, preflight['checks']


def test_preflight_reports_cgroup_v2_and_the_systemd_driver(setup_runs):
    results = setup_runs[0].results
    assert results, setup_runs[0].output
    facts = results['preflight']['facts']
    assert (str(facts['cgroup_version']), facts['cgroup_driver']) == ('2', 'systemd'), facts
