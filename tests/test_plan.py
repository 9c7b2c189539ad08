"""The study graph with replicates: what is shared, what each replicate owns, and the replay control."""

from __future__ import annotations

from collections import Counter

from conftest import REPO

from synthmix.data.design import PoolKey, study_design
from synthmix.params import parse_params
from synthmix.run.graph import plan_study


def study(**changes) -> dict:
    base = {"study": "plan", "replicates": 3,
            "generation": {"temperatures": [0.3, 0.7]},
            "filter": {"methods": ["none", "teacher_agreement"]},
            "experiments": {
                "size": {"temperatures": [0.7], "filters": ["none"], "protocols": ["incremental", "replay", "mixed"],
                         "synthetic_shares": [0.2, 0.8], "mixed_shares": [0.8], "distill": False},
                "variety": {"filters": ["none"], "synthetic_shares": [0.5], "distill": False},
                "consistency": {"temperatures": [0.7], "filters": ["none", "teacher_agreement"],
                                "synthetic_shares": [0.5], "distill": True}},
            "claims": {"variety_share": 0.5, "consistency_share": 0.5}}
    for section, values in changes.items():
        base[section] = {**base.get(section, {}), **values} if isinstance(values, dict) else values
    return base


def plan(tmp_path, **changes):
    params = parse_params(study(**changes))
    return params, plan_study(params, REPO / "params" / "default.yaml", tmp_path)[0]


def test_replicates_own_their_split_grader_and_draw_but_share_pools(tmp_path):
    _, steps = plan(tmp_path)
    kinds = Counter(s.kind for s in steps)
    assert kinds["generate"] == 2  # one pool per temperature, shared by the replicates
    filters = [s.condition for s in steps if s.kind == "filter"]
    assert sorted(filters) == ["t0.3-none", "t0.7-none", "t0.7-teacher_agreement-r0", "t0.7-teacher_agreement-r1",
                               "t0.7-teacher_agreement-r2"]
    teachers = Counter(s.condition.rsplit("-r", 1)[0] for s in steps if s.kind == "train_teacher")
    # every experiment its own runs: the arms a claim compares share one schedule
    assert teachers == {"t0.7-none-incremental20-80": 3, "replay20-80": 3, "t0.7-none-mixed0.8": 3,
                        "t0.3-none-incremental50": 3, "t0.7-none-incremental50": 3,
                        "t0.7-teacher_agreement-incremental50": 3, "t0.7-none~teacher_agreement-incremental50": 3}
    size = next(s for s in steps if s.condition == "t0.7-none-incremental20-80-r1")
    assert size.experiments == ("size",) and size.parameters["synthetic_shares"] == [0.2, 0.8]
    replay = next(s for s in steps if s.condition == "replay20-80-r1")
    assert replay.parameters["synthetic_shares"] == [0.2, 0.8] and replay.depends_on == ()
    assert Counter(s.kind for s in steps)["distill"] == 6  # consistency's teachers only (filtered, thinned unfiltered)


def test_an_identical_condition_of_two_experiments_is_one_run(tmp_path):
    base = study()
    base["experiments"] = {
        "size": {"temperatures": [0.7], "filters": ["none"], "synthetic_shares": [0.2, 0.8], "distill": False},
        "distillation": {"temperatures": [0.7], "filters": ["none"], "synthetic_shares": [0.2, 0.8], "distill": True}}
    steps, _ = plan_study(parse_params(base), REPO / "params" / "default.yaml", tmp_path)
    runs = [s for s in steps if s.kind == "train_teacher"]
    assert len(runs) == 3 and all(s.experiments == ("distillation", "size") for s in runs)
    assert Counter(s.kind for s in steps)["distill"] == 3


def test_the_unfiltered_arm_draws_from_a_pool_the_size_of_the_filtered_one(tmp_path):
    _, steps = plan(tmp_path)
    by_id = {s.id: s for s in steps}
    unfiltered = next(s for s in steps if s.condition == "t0.7-none~teacher_agreement-incremental50-r2")
    like = by_id[next(d for d in unfiltered.depends_on if "teacher_agreement-r2" in d)]
    assert like.kind == "filter" and unfiltered.parameters["pool_size_like_dir"] == like.output_dir
    filtered = next(s for s in steps if s.condition == "t0.7-teacher_agreement-incremental50-r2")
    assert filtered.parameters["filtered_dir"] == like.output_dir
    assert unfiltered.parameters["synthetic_shares"] == filtered.parameters["synthetic_shares"]


def test_pools_are_sized_from_the_shares_asked_for(tmp_path):
    params = parse_params(study())
    design = study_design(params, REPO / "params" / "default.yaml")
    # 96 human training responses, 42% coded 1: 80% synthetic is 384 responses, 160 coded 1 and 224 coded 0
    assert design.needs[PoolKey(0.7)] == {1: 160, 0: 224} and design.targets[PoolKey(0.7)] == {1: 240, 0: 336}
    assert design.needs[PoolKey(0.3)] == {1: 40, 0: 56}  # 50% synthetic: 96 responses


def test_an_experiment_with_pools_per_replicate_gets_its_own_pools_sized_to_its_draw(tmp_path):
    base = study()
    base["experiments"]["variety"]["pool_per_replicate"] = True
    params = parse_params(base)
    steps, _ = plan_study(params, REPO / "params" / "default.yaml", tmp_path)
    pools = sorted(s.condition for s in steps if s.kind == "generate")
    assert pools == ["t0.3-r0", "t0.3-r1", "t0.3-r2", "t0.7", "t0.7-r0", "t0.7-r1", "t0.7-r2"]
    design = study_design(params, REPO / "params" / "default.yaml")
    assert design.targets[PoolKey(0.7, own=True)] == design.needs[PoolKey(0.7, own=True)] == {1: 40, 0: 56}
    own = next(s for s in steps if s.condition == "t0.7-ownpool-none-incremental50-r2")
    assert "/01_generate/t0.7-r2-" in own.parameters["pool_dir"] and own.experiments == ("variety",)
    seeds = {s.condition: s.parameters["seed_offset"] for s in steps if s.kind == "generate"}
    assert len({seeds[f"t0.3-r{r}"] for r in range(3)}) == 3  # each replicate's own generation seeds


def test_human_examples_or_per_replicate_generation_give_each_replicate_its_own_pool(tmp_path):
    for generation in ({"examples": "human_train"}, {"per_replicate": True}):
        _, steps = plan(tmp_path, generation=generation)
        pools = sorted(s.condition for s in steps if s.kind == "generate")
        assert pools == [f"t{t}-r{r}" for t in (0.3, 0.7) for r in range(3)]
        teacher = next(s for s in steps if s.condition == "t0.7-ownpool-none-incremental20-80-r2")
        assert "/01_generate/t0.7-r2-" in teacher.parameters["pool_dir"]
        filters = {s.condition for s in steps if s.kind == "filter"}
        assert {"t0.7-r2-none", "t0.7-r2-teacher_agreement"} <= filters  # one name per step
