"""Build hook: compile nncompress's per-bit loops when it is installed in place.

``pip install -e .`` runs this in the build environment (with the dependencies listed under
``[tool.hatch.build.hooks.custom]``), which writes the loops' machine code beside the
sources that the installed package then runs from (``nncompress/warmup.py``): the module
built ahead of time, which spares every call numba's import and memory, and numba's cache,
which serves where that module cannot be built or used (``nncompress/jit.py``). It never
fails the install: where compiling is not possible the first call compiles, as before.
Wheels built for others are not affected (their code would belong to this machine's CPU).
"""

from __future__ import annotations

import os
import subprocess
import sys

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CompileAheadHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel" or version != "editable":
            return
        if os.environ.get("NNCOMPRESS_NO_WARMUP"):
            return
        # The build environment's packages reach this process through its sys.path (pip
        # adds them): hand them on, behind the sources.
        path = os.pathsep.join([self.root, *(p for p in sys.path if p)])
        env = dict(os.environ, PYTHONPATH=path)
        try:
            run = subprocess.run(
                [sys.executable, "-m", "nncompress.warmup"],
                cwd=self.root,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except (OSError, subprocess.SubprocessError) as e:
            self.app.display_warning(f"nncompress: not compiled ahead ({e})")
            return
        if run.returncode:
            tail = (run.stderr.strip().splitlines() or ["?"])[-1]
            self.app.display_warning(f"nncompress: not compiled ahead ({tail})")
