"""Stage 3's ratios to the teacher (cgF1, IL_MCC, pmF1, mIoU) are evaluated from a run's
``metrics.json`` and the report shows the diagnosis table; a figure that is not defined is
recorded as not measured with the reason."""

import json
import subprocess
import sys
from pathlib import Path

from sam3spec.report.specs import SPECS_DIR, load_specs

ROOT = Path(__file__).resolve().parents[3]


def test_the_factor_specs_exist():
    specs = load_specs(SPECS_DIR)
    assert specs["stage3.il_mcc_ratio"].passes(0.9) and not specs["stage3.il_mcc_ratio"].passes(0.89)
    assert specs["stage3.pmf1_ratio"].passes(0.85) and not specs["stage3.pmf1_ratio"].passes(0.84)


def diagnosis(il_mcc: float, pmf1: float) -> dict:
    return {
        "cgF1": 100 * il_mcc * pmf1,
        "IL_MCC": il_mcc,
        "pmF1": pmf1,
        "pmF1_at": {"0.50": pmf1, "0.95": pmf1 / 2},
        "negative": {"pairs": 4, "false_positives": 1, "fp_rate": 0.25},
        "hard_negative": {"pairs": 2, "false_positives": 1, "fp_rate": 0.5},
        "misses": {"small": {"instances": 3, "missed": 1, "miss_rate": 1 / 3}},
        "ceiling": {"mask_size": [80, 80], "mean_iou": 0.97, "by_size": {"small": 0.9}},
    }


def run_gate(tmp_path: Path, metrics: dict) -> tuple[subprocess.CompletedProcess, dict]:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps(metrics))
    command = [sys.executable, "-m", "pytest", "suites/gates/test_stage3.py", "-q", "-p", "no:cacheprovider"]
    command += ["-k", "reaches_the_teacher", "--run-dir", str(run), "--report", "s3"]
    command += ["--report-dir", str(tmp_path / "reports"), "--spec-failures-ok", "--report-stages", "stage3"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    results = json.loads((tmp_path / "reports" / "s3.json").read_text())
    return done, results


def test_ratios_are_evaluated_from_the_run_and_the_report_shows_the_diagnosis(tmp_path):
    teacher = {"cgF1": 50.0, "IL_MCC": 0.8, "pmF1": 0.625, "mIoU": 0.7}
    stage3 = {"cgF1": 40.0, "IL_MCC": 0.76, "pmF1": None, "mIoU": 0.65}  # pmF1 not defined
    metrics = {
        "teacher": teacher,
        "student": teacher,
        "stage3": stage3,
        "diagnosis": {"teacher": diagnosis(0.8, 0.625), "stage3": diagnosis(0.76, 0.5)},
    }
    done, results = run_gate(tmp_path, metrics)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    by_id = {r["id"]: r for r in results["results"]}
    assert by_id["stage3.il_mcc_ratio"]["status"] == "pass"
    assert abs(by_id["stage3.il_mcc_ratio"]["measured"] - 0.95) < 1e-9
    assert by_id["stage3.cgf1_ratio"]["status"] == "fail"  # 0.8 < 0.85
    assert by_id["stage3.pmf1_ratio"]["status"] == "not measured"
    assert "pmF1 is not defined" in by_id["stage3.pmf1_ratio"]["reason"]
    report = (tmp_path / "reports" / "s3.md").read_text()
    assert "`stage3.il_mcc_ratio`" in report and "`stage3.pmf1_ratio`" in report
    assert "## stage3: diagnosis" in report
    assert "`phase2." not in report and "`export." not in report  # --report-stages stage3
    assert "| quantity | teacher | Stage 3 | Stage 3 / teacher |" in report
    assert "| IL_MCC | 0.8000 | 0.7600 | 0.950 |" in report
