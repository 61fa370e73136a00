"""Atomic artifacts: a writer killed with SIGKILL at any point leaves the previous best intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np

from keras_tflite.deploy.artifacts import c_array, read_manifest

# Writes model sets forever, moving `best` to each new one and removing the previous one, as the
# callback does with save_best_only=True. Big random models make every kill land mid-write.
WRITER = r"""
import os, sys, itertools
from pathlib import Path
from keras_tflite.deploy.artifacts import write_model_set, point_link
directory = Path(sys.argv[1])
rng = os.urandom
print("ready", flush=True)
for i in itertools.count(int(sys.argv[2])):
    target = directory / "exports" / f"{i:06d}"
    write_model_set(target, rng(100_000 + i % 7 * 10_000), {"n": i}, c_symbol="g_model")
    previous = (directory / "best").resolve() if (directory / "best").is_symlink() else None
    point_link(directory / "best", target)
    if previous is not None and previous != target.resolve():
        import shutil; shutil.rmtree(previous)
    print(i, flush=True)
"""


def test_sigkill_at_many_points_never_loses_or_corrupts_the_best(tmp_path):
    rng = np.random.default_rng(0)
    start, seen = 0, []
    for _ in range(20):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout.readline().strip() == "ready"
        if start == 0:
            assert writer.stdout.readline().strip() == "0"  # a first best exists
        time.sleep(float(rng.uniform(0.0, 0.5)))
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        manifest = read_manifest(tmp_path / "best")
        assert manifest is not None, "best/ is missing, partial or does not match its manifest"
        seen.append(manifest["n"])
        start = max(seen) + 1000 * (len(seen))  # fresh folder names for the next writer
    assert len(set(seen)) > 5  # the kills landed at many different points


def test_c_array_compiles_and_holds_the_bytes(tmp_path):
    data = bytes(range(256)) * 3 + b"\x01\x02"
    header, source = c_array(data, "g_model")
    (tmp_path / "model_data.h").write_text(header)
    (tmp_path / "model_data.cc").write_text(source)
    (tmp_path / "main.cc").write_text(
        '#include <cstdio>\n#include "model_data.h"\n'
        "int main() { unsigned long sum = 0; for (unsigned i = 0; i < g_model_len; ++i) sum += g_model[i];\n"
        '  std::printf("%u %lu %d\\n", g_model_len, sum, (int)(((unsigned long)g_model) % 16)); }\n'
    )
    binary = tmp_path / "check"
    subprocess.run(
        [
            "g++",
            "-std=c++11",
            "-o",
            str(binary),
            str(tmp_path / "main.cc"),
            str(tmp_path / "model_data.cc"),
        ],
        check=True,
    )
    length, total, misalignment = subprocess.run(
        [str(binary)], capture_output=True, text=True
    ).stdout.split()
    assert int(length) == len(data) and int(total) == sum(data) and misalignment == "0"
