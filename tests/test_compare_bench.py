"""benches/compare_pysyncobj.py end to end with its --quick preset (issue 13): both libraries,
3 trials a measurement, 2 s windows, a two-step ladder; about 50 s on two cores. It checks that
the run is sane (every measurement present for both libraries, times positive and finite, the
table's rows there), never the figures themselves: those are for BENCHMARKS.md, from the full run.
Skipped only when PySyncObj is not installed (`pip install '.[bench]'`)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

pytest.importorskip("pysyncobj", reason="PySyncObj is not installed: pip install '.[bench]' (only this bench needs it)")

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benches", "compare_pysyncobj.py")
LIBS = ("quorate", "pysyncobj")
TRIALS = 3


def positive_finite(values):
    return bool(values) and all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values)


def test_quick_run_measures_both_libraries(tmp_path):
    out = tmp_path / "results.json"
    # A hard bound on the whole run; its workers die with it (PR_SET_PDEATHSIG), even on SIGKILL.
    proc = subprocess.run([sys.executable, SCRIPT, "--quick", "all", "--json", str(out)],
                          capture_output=True, text=True, timeout=240)
    report = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, report
    res = json.loads(out.read_text())

    for lib in LIBS:
        f = res["failover"]["3"][lib]
        assert f["stats"]["n"] == TRIALS and positive_finite(f["times_s"]), (lib, f, report)
        c = res["coldstart"]["3"][lib]
        assert c["stats"]["n"] == TRIALS and positive_finite(c["times_s"]), (lib, c, report)
        b = res["busy"]["3"][lib]
        assert b["failover"]["stats"]["n"] == TRIALS and positive_finite(b["failover"]["times_s"]), (lib, b, report)
        w = b["window"]
        assert w["window_s"] >= 1.5, (lib, b, report)
        # The window's counts agree with one another and with the terms read before and after it.
        assert w["leader"] in w["terms_before"], (lib, w)
        assert w["terms_raised"] == max(w["terms_after"].values()) - max(w["terms_before"].values()), (lib, w)
        assert all(w["terms_after"][i] >= w["terms_before"][i] for i in w["terms_before"]), (lib, w)
        assert w["stable"] == (w["elections"] == 0 and w["leader_changes"] == 0 and w["terms_raised"] == 0), (lib, w)
        i = res["idle"]["3"][lib]
        assert i["window_s"] >= 1.5 and all(v >= 0 and math.isfinite(v) for v in i["cpu_pct"].values()), (lib, i)
        assert i["rss_mib_mean"] > i["bare_rss_mib_mean"] > 0, (lib, i)
        q = res["query"][lib]
        assert positive_finite([q["leader_ns"]["is_leader"], q["leader_ns"]["leader"]]), (lib, q)
        lo = res["lowest"][lib]
        assert lo["levels"] and all("stable" in level for level in lo["levels"]), (lib, lo)
        if lo["lowest"] is not None:
            assert lo["failover"]["stats"]["n"] == 2 and positive_finite(lo["failover"]["times_s"]), (lib, lo)
    # quorate's callbacks beside its observer, trial for trial.
    q = res["failover"]["3"]["quorate"]
    assert len(q["callback_times_s"]) == TRIALS and positive_finite(q["callback_times_s"]), q
    # The busy loop really held the GIL for whole calls, far longer than the 5 ms switch interval.
    assert res["meta"]["busy"]["gil_gap_ms_max"] > 10, res["meta"]["busy"]

    for row in ("| crash failover, 3 processes", "| first leader from a cold start, 3 processes",
                "| idle CPU per node, 3 processes", "| RSS per node process", "| leader query from Python",
                "| busy service: spurious elections", "| busy service: crash failover",
                "| lowest stable election timeout", "| crash failover at each one's lowest stable setting"):
        assert row in proc.stdout, (row, report)
    assert "python benches/compare_pysyncobj.py --quick all" in proc.stdout, report
