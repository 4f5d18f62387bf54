"""criu's cpuinfo commands as the real one answers them, for the CPU check's tests (it imports nothing of the test
bed, so that tests/unit/plugins/module_utils/test_cpu.py loads it by its path)."""

import os


class FakeCriu:
    """`criu cpuinfo dump` writes `image` (bytes; None: fails as CRIU does) into its -D directory; `criu cpuinfo
    check` answers `result` (rc, stdout, stderr). Each run is kept in `runs`: argv, the directory and its mode, and
    for a check the image it was given and what its directory held."""

    def __init__(self, image=None, result=(0, '', '')):
        self.image, self.result, self.runs = image, result, []

    def __call__(self, argv):
        directory = argv[argv.index('-D') + 1]
        path = os.path.join(directory, 'cpuinfo.img')
        run = dict(argv=argv, directory=directory, mode=os.stat(directory).st_mode & 0o777)
        self.runs.append(run)
        if argv[1:3] == ['cpuinfo', 'dump']:
            if self.image is None:
                return 1, '', 'Error (criu/arch/x86/cpu.c:85): cpu: Unable to open image\n'
            with open(path, 'wb') as handle:
                handle.write(self.image)
            return 0, '', ''
        with open(path, 'rb') as handle:
            run.update(image=handle.read(), listing=os.listdir(directory))
        return self.result
