"""Root pytest configuration: the spec/result plugin (harness/plugin.py) and shared fixtures.

Stage markers (student, data, teacher, phase1, phase2, video, stage3, quant, export, runtime,
native) select one stage's gate: ``pytest suites/ -m student``. ``--report NAME`` writes
``reports/NAME.md``.
"""

pytest_plugins = ["harness.plugin"]
