"""The options export and import hand to checkpoint and restore (_lifecycle.Parameters: _take's
CheckpointParameters, _restore's RestoreParameters) are the options of docker_checkpoint and docker_restore,
with their defaults: a new option there cannot break an export or an import (it gets its default), and a name
that is no option fails where it is written."""

from unittest import mock

import pytest

from ansible_collections.cryo.docker.plugins.module_utils._restore import RestoreParameters
from ansible_collections.cryo.docker.plugins.module_utils._take import CheckpointParameters
from ansible_collections.cryo.docker.plugins.modules import docker_checkpoint, docker_restore


def defaults(module):
    """{option: default} of the argument_spec module.main() runs with (its run() intercepted)."""
    spec = {}
    with mock.patch.object(module, 'run', lambda manager, argument_spec, **rules: spec.update(argument_spec)):
        module.main()
    return {option: entry.get('default') for option, entry in spec.items()}


@pytest.mark.parametrize('parameters, module', [(CheckpointParameters, docker_checkpoint),
                                                (RestoreParameters, docker_restore)])
def test_the_defaults_are_the_modules_own(parameters, module):
    assert parameters.DEFAULTS == defaults(module)


def test_a_caller_names_what_it_sets_and_gets_every_other_default():
    params = RestoreParameters(container='web', checkpoint='move', keep_checkpoint=False)
    assert params['keep_checkpoint'] is False and params['verify'] is True and params['fallback'] == 'fail'
    assert params['docker_host'] == 'unix:///var/run/docker.sock'


def test_a_name_that_is_no_option_is_a_programming_error():
    with pytest.raises(TypeError, match='CheckpointParameters has no option leave_runing'):
        CheckpointParameters(container='web', checkpoint='move', leave_runing=True)
