"""The scorecard (notebook 10): verdicts read from a run's metrics in both spellings, the paper's numbers beside
ours, runs that did not finish, the side-by-side benchmark's arithmetic, and the report it heads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from talklib.config import ConfigError, validate
from talklib.errors import UserError
from talklib.outputs import write_metrics
from talklib.scorecard import benchmark as B
from talklib.scorecard import card as C
from talklib.scorecard.papers import PAPERS, SPEECHSPLIT_T1, TABLES, table


def _run(tmp_path, with_08=True):
    run = tmp_path / "run"
    write_metrics(run, "05_audio_conditioned_nerf", {
        "psnr/SpeechSplit content": 16.4, "psnr/SpeechSplit rhythm": 16.8, "lse_c/SpeechSplit content": 0.08,
        "m_lmd/SpeechSplit content": 2.1, "gt_lse_c": 0.37, "cond_steps": 100,
        "claim/T1: SpeechSplit (Eq. 7) beats DeepSpeech in PSNR": True,
        "claim/T1: alone, quality rises rhythm < pitch < content": False,
        "claim/T5: f_a beats MFCC and DeepSpeech in LMD": False})
    write_metrics(run, "07_codebooks", {
        "table3/ssim/full": 0.6, "table3/ssim/w/o AU": 0.59, "table3/lse_c/w/o Global": 0.04,
        "claim/testA/full beats both ablations in sync": True, "claim/val/full beats both ablations in sync": False,
        "claim/testA/(ours) full beats the raw NeRF in SSIM": False})
    if with_08:
        write_metrics(run, "08_gp_vae", {
            "table4/Trans GP-VAE/D-Rot %": 109.7, "table4/Trans GP-VAE/motion kept": 0.45,
            "table4/verdict/GP improves on the plain Transformer VAE (D-Rot)": False,
            "table2/DFA-NeRF, generated pose and f_e (from the wav)/psnr": 13.6,
            "table2/ground truth/lse_c": 0.37, "table2/verdict/generated blinks/s near the truth's (within 50 %)": True,
            "table2/verdict/sync near the truth's": None})   # the notebook could not decide it (no face found)
    return run


def test_every_paper_has_its_tables_and_every_table_its_numbers():
    assert {t.paper for t in TABLES} == set(PAPERS)
    for t in TABLES:
        assert t.rows and all(len(v) <= len(t.columns) for v in t.rows.values()), t.key
    assert table("dan_t1").rows is SPEECHSPLIT_T1
    with pytest.raises(KeyError, match="one of"):
        table("nope")


def test_verdicts_are_read_in_both_spellings_and_splits(tmp_path):
    card = C.scorecard([_run(tmp_path)])
    tables = next(iter(card["runs"].values()))["tables"]
    t1 = {v["claim"]: v["verdict"] for v in tables["dan_t1"]["verdicts"]}
    assert t1 == {"SpeechSplit (Eq. 7) beats DeepSpeech in PSNR": C.HOLDS,
                  "alone, quality rises rhythm < pitch < content": C.FAILS}
    assert [v["verdict"] for v in tables["dfa_t5"]["verdicts"]] == [C.FAILS]
    t3 = [(v["claim"], v["split"], v["verdict"]) for v in tables["talker_t3"]["verdicts"] if v["verdict"] != C.UNTESTABLE]
    assert ("full beats both ablations in sync", "testA", C.HOLDS) in t3
    assert ("full beats both ablations in sync", "val", C.FAILS) in t3
    t4 = tables["dfa_t4"]["verdicts"]
    assert [v["verdict"] for v in t4] == [C.FAILS]
    t2 = tables["dfa_t2"]
    assert [v["verdict"] for v in t2["verdicts"]] == [C.HOLDS, C.UNTESTABLE]
    assert "missing in this run" in t2["verdicts"][1]["why"]
    assert t2["ours"]["DFA-NeRF, generated pose and f_e (from the wav)"]["psnr"] == 13.6
    assert t2["matched"]["DFA-NeRF (paper, Testset A)"] == "DFA-NeRF, generated pose and f_e (from the wav)"


def test_our_rows_keep_slashes_in_their_names(tmp_path):
    card = C.scorecard([_run(tmp_path)])
    ours = next(iter(card["runs"].values()))["tables"]["talker_t3"]["ours"]
    assert ours["w/o AU"] == {"ssim": 0.59} and ours["w/o Global"] == {"lse_c": 0.04}
    assert ours["full"]["ssim"] == 0.6
    t1 = next(iter(card["runs"].values()))["tables"]["dan_t1"]["ours"]
    assert t1["SpeechSplit content"] == {"psnr": 16.4, "lse_c": 0.08, "m_lmd": 2.1}
    assert t1["ground truth"] == {"lse_c": 0.37}


def test_a_table_whose_notebook_did_not_run_says_so(tmp_path):
    card = C.scorecard([_run(tmp_path, with_08=False)])
    tables = next(iter(card["runs"].values()))["tables"]
    for key in ("dfa_t2", "dfa_t4", "s3d_t3", "talker_t2"):
        assert [v["verdict"] for v in tables[key]["verdicts"]] == [C.NOT_RUN], key
    assert card["tally"]["S3D-NeRF"][C.NOT_RUN] == 2


def test_the_tally_counts_the_papers_claims_not_ours(tmp_path):
    card = C.scorecard([_run(tmp_path)])
    t = card["tally"]["NeRF-3DTalker"]
    # Table III: two measured claims (the "(ours)" one left out) and one untestable; Table II not run
    assert (t[C.HOLDS], t[C.FAILS], t[C.UNTESTABLE], t[C.NOT_RUN]) == (1, 1, 1, 1)


def test_markdown_puts_the_papers_numbers_beside_ours_and_is_written_whole(tmp_path):
    run = _run(tmp_path)
    card = C.scorecard([run])
    md = C.markdown(card)
    assert "| SpeechSplit content | 26.8 | 5.48 | — | 16.4 | 0.08 | 2.1 |" in md
    assert "not testable here: LPIPS needs" in md
    md_path, js_path = C.write(run, card)
    assert md_path.read_text() == md
    assert json.loads(js_path.read_text())["tally"] == card["tally"]
    assert not list(run.glob(".scorecard*"))


def test_a_folder_that_is_no_run_is_refused_in_one_line(tmp_path):
    with pytest.raises(UserError, match="no metrics/ folder") as e:
        C.scorecard([tmp_path])
    assert "\n" not in str(e.value)


def test_score_runs_takes_nothing_or_a_list_of_folders():
    validate({"score_runs": ""})
    validate({"score_runs": "runs/full, runs/other"})
    with pytest.raises(ConfigError, match="score_runs"):
        validate({"score_runs": "runs/a,,runs/b"})


def test_the_single_shots_square_goes_back_where_it_was_cut():
    bg = np.zeros((40, 40, 3), np.uint8)
    shot = np.full((2, 8, 8, 3), 200, np.uint8)
    out = B.paste_shot(shot, (10.0, 20.0, 16.0), bg)
    assert out.shape == (2, 40, 40, 3)
    assert (out[:, 21:35, 11:25] == 200).all()              # inside the 16-pixel square at (10, 20)
    assert (out[:, :19] == 0).all() and (out[:, :, :9] == 0).all() and (out[:, :, 27:] == 0).all()


def test_normalised_scores_put_the_baseline_at_one_and_the_truth_where_it_has_a_value():
    bench = {"rows": {
        B.BASELINE: {"psnr": 20.0, "m_lmd": 2.0, "lse_c": 0.2, "blinks_per_s": 0.0, "fps": 10.0},
        "other": {"psnr": 10.0, "m_lmd": 4.0, "lse_c": 0.4, "blinks_per_s": 0.2, "fps": 20.0},
        B.TRUTH: {"psnr": None, "m_lmd": 0.0, "lse_c": 0.4, "blinks_per_s": 0.4, "fps": None}}}
    n = B.normalised(bench)
    assert n[B.BASELINE]["PSNR"] == 1.0 and n[B.BASELINE]["M-LMD"] == 1.0 and n[B.BASELINE]["FPS"] == 1.0
    assert n["other"]["PSNR"] == 0.5 and n["other"]["M-LMD"] == 0.5 and n["other"]["FPS"] == 2.0
    assert n["other"]["LSE-C"] == 1.0 and n[B.BASELINE]["LSE-C"] == 0.5       # the truth's own sync = 1
    assert n["other"]["blinks/s"] == 0.5


def test_the_benchmark_names_what_a_run_lacks(tmp_path):
    (tmp_path / "checkpoints" / "nerf03").mkdir(parents=True)
    lack = B.missing(tmp_path)
    assert B.BASELINE not in lack
    assert lack["NeRF-3DTalker"] == ["checkpoints/06_dis_aud", "models/standardized_space.pt"]
    assert set(lack) == {s.name for s in B.SYSTEMS} - {B.BASELINE}


def test_a_motion_generators_pose_wins_over_the_recorded_one():
    from talklib.render import _merged

    scene = lambda audio, n: {"pose": np.zeros((n, 6)), "parts": {"f_illu": np.ones((n, 27))}}  # noqa: E731

    class Motion:
        def __call__(self, audio, n):
            return {"pose": np.full((n, 6), 2.0), "parts": {"f_e": np.ones((n, 4))}}

        def summary(self):
            return "generated"

    both = _merged(scene, Motion())
    out = both(None, 3)
    assert (out["pose"] == 2.0).all() and set(out["parts"]) == {"f_illu", "f_e"}
    assert both.summary() == "generated"
    assert _merged(scene, None) is scene and _merged(None, None) is None


def test_the_report_is_headed_by_the_scorecard(tmp_path):
    from talklib.pipeline import _report_html, _scorecard_md

    run = _run(tmp_path)
    assert _scorecard_md(run) is None
    C.write(run, C.scorecard([run]))
    html = _report_html(run, [], {"state": "complete", "preset": "small", "overrides": {}, "started": "now", "git": None},
                        {})
    assert html.index("reproduction scorecard") < html.index("<h2>Notebooks</h2>")
    assert "<table>" in html and "<td>disentangled-audio NeRF</td>" in html
