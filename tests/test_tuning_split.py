"""The tuning split: whole train sentences, length-matched to validation, whose phrases leave the fine-tune."""

import datasets
import pytest

from sst2bench.config import run_config_from_dict
from sst2bench.data import (
    TuningConfig,
    length_matched_sample,
    load_sst2_tsv,
    make_tuning_split,
    rows_contained_in,
    token_spans,
    whole_sentences,
)
from sst2bench.errors import UserError


def labelled(sentences: list[str]) -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {"idx": list(range(len(sentences))), "sentence": sentences, "label": [i % 2 for i in range(len(sentences))]}
    )


# Rows as SST-2 train holds them: whole sentences and phrases of them (GLUE's trailing space kept).
TRAIN = [
    "a charming and moving journey . ",
    "charming and moving ",
    "moving ",
    "a dull , boring mess ",
    "boring mess ",
    "the story is not good but the film is ",
    "the film is ",
    "goodness ",  # shares letters with "good", but is no token run of any row
    "charming and moving ",  # a duplicate row
    "good ",
]


def test_whole_sentences_are_rows_no_longer_row_contains_on_token_boundaries():
    whole = [TRAIN[row] for row in whole_sentences(TRAIN)]
    assert whole == ["a charming and moving journey . ", "a dull , boring mess ", "the story is not good but the film is ", "goodness "]
    assert "a charming" in set(token_spans("a charming and moving journey ."))
    assert "charming and moving journey . a" not in set(token_spans("a charming and moving journey ."))


def test_rows_contained_in_a_sentence_include_duplicates_and_the_sentence_itself():
    assert rows_contained_in(TRAIN, ["a charming and moving journey . "]) == [0, 1, 2, 8]
    assert rows_contained_in(TRAIN, ["the story is not good but the film is "]) == [5, 6, 9]


def test_length_matched_sample_follows_the_reference_bins_and_is_seeded():
    reference = [5] * 30 + [20] * 70
    lengths = [5] * 200 + [20] * 200 + [40] * 200
    picked = length_matched_sample(lengths, reference, size=50, seed=3, bins=4)
    assert len(picked) == len(set(picked)) == 50
    assert sorted(lengths[i] for i in picked) == [5] * 15 + [20] * 35
    assert picked == length_matched_sample(lengths, reference, size=50, seed=3, bins=4)
    assert picked != length_matched_sample(lengths, reference, size=50, seed=4, bins=4)
    with pytest.raises(UserError, match=r"needs 35 sentences in length bin 2 \(20 to 20 words\) but the data has 10"):
        length_matched_sample([5] * 200 + [20] * 10, reference, size=50, seed=3, bins=4)


def test_make_tuning_split_removes_every_phrase_of_a_tuning_sentence_from_train():
    train, validation = labelled(TRAIN), labelled(["a film is so dull ", "a long good film is here "])
    splits = make_tuning_split(train, validation, TuningConfig(size=2, seed=0, length_bins=2))
    assert splits.source == "train-sentences" and len(splits.tuning) == len(splits.select) == 1
    pool = list(splits.tuning["sentence"]) + list(splits.select["sentence"])  # both parts leave the fine-tune
    assert set(pool) <= {TRAIN[row] for row in whole_sentences(TRAIN)}
    spans = {span for sentence in pool for span in token_spans(sentence)}
    assert not any(" ".join(sentence.split()) in spans for sentence in splits.train["sentence"])
    assert len(splits.train) + splits.removed_train_rows == len(TRAIN)
    assert splits.removed_train_rows == len(rows_contained_in(TRAIN, pool))


def test_the_select_part_is_held_out_of_the_tune_part_and_leaves_train_as_it_was():
    train, validation = (
        labelled(TRAIN),
        labelled(["a film is so dull ", "a long good film is here ", "one two three four five six seven eight nine "]),
    )
    halves = make_tuning_split(train, validation, TuningConfig(size=3, seed=0, length_bins=1, select_fraction=0.34))
    whole = make_tuning_split(train, validation, TuningConfig(size=3, seed=0, length_bins=1, select_fraction=0))
    assert (len(halves.tuning), len(halves.select)) == (2, 1) and whole.select is None and len(whole.tuning) == 3
    assert set(halves.tuning["sentence"]).isdisjoint(halves.select["sentence"])
    assert sorted([*halves.tuning["sentence"], *halves.select["sentence"]]) == sorted(whole.tuning["sentence"])
    # The selection reads the select part when there is one, else the tune part; the fine-tune's rows do not move.
    assert halves.selection is halves.select and whole.selection is whole.tuning
    assert halves.train["idx"] == whole.train["idx"] and halves.removed_train_rows == whole.removed_train_rows
    other_seed = make_tuning_split(train, validation, TuningConfig(size=3, seed=5, length_bins=1, select_fraction=0.34))
    assert len(other_seed.select) == 1
    for bad in (-0.1, 1.0):
        with pytest.raises(UserError, match="select_fraction must be in"):
            TuningConfig(select_fraction=bad)
    with pytest.raises(UserError, match="leaves the tune or the select part empty"):
        TuningConfig(size=1, select_fraction=0.5)
    assert TuningConfig(source="validation", size=1).select_fraction == 0.5  # not used: Intel's protocol tunes and selects on validation


def test_tuning_on_validation_is_the_reported_split_and_all_of_train():
    train, validation = labelled(TRAIN), labelled(["a film . "])
    splits = make_tuning_split(train, validation, TuningConfig(source="validation"))
    assert splits.tuning is validation and splits.train is train and splits.removed_train_rows == 0 and splits.select is None


def test_real_sst2_tuning_split_is_whole_sentences_matching_validation_lengths(sst2_dir):
    data, _ = load_sst2_tsv(sst2_dir, splits=("train", "validation"))
    splits = make_tuning_split(data["train"], data["validation"], TuningConfig())
    tuning, train = list(splits.tuning["sentence"]) + list(splits.select["sentence"]), list(data["train"]["sentence"])
    assert len(splits.tuning) == len(splits.select) == 1000 and len(splits.train) == len(train) - splits.removed_train_rows
    mean = lambda rows: sum(len(s.split()) for s in rows) / len(rows)  # noqa: E731
    assert abs(mean(tuning) - mean(data["validation"]["sentence"])) < 1.0 < mean(data["validation"]["sentence"]) - mean(train)
    # Checked by plain substring search, independently of the span index: no longer train row holds a tuning sentence.
    padded = [f" {' '.join(row.split())} " for row in train]
    for sentence in tuning[:40]:
        needle = f" {' '.join(sentence.split())} "
        assert not any(needle in row for row in padded if len(row) > len(needle))
    assert not {" ".join(s.split()) for s in splits.train["sentence"]} & {" ".join(s.split()) for s in tuning}
    again = make_tuning_split(data["train"], data["validation"], TuningConfig())
    assert again.tuning["idx"] == splits.tuning["idx"] and again.select["idx"] == splits.select["idx"]


def test_tuning_and_seed_params_are_checked_at_load():
    cfg = run_config_from_dict(
        {"run": "x", "data": {"tuning": {"size": 100, "also_on_reported": True}}, "quantize": {"calibration_seeds": [42, 7]}}
    )
    assert cfg.data.tuning == TuningConfig(size=100, also_on_reported=True)
    with pytest.raises(UserError, match=r"data.tuning: .*source must be one of"):
        run_config_from_dict({"run": "x", "data": {"tuning": {"source": "test"}}})
    with pytest.raises(UserError, match="data.tuning: unknown keys"):
        run_config_from_dict({"run": "x", "data": {"tuning": {"sise": 10}}})
    with pytest.raises(UserError, match="calibration_seeds must be distinct"):
        run_config_from_dict({"run": "x", "quantize": {"calibration_seeds": [1, 1]}})


def test_seed_variants_recalibrate_static_recipes_only():
    from sst2bench.quantization import preset

    cfg = run_config_from_dict({"run": "x", "quantize": {"calibration_seeds": [42, 7, 8]}})
    variants = cfg.quantize.seed_variants(preset("ort-static-qdq"))
    assert [(v.name, v.calibration_seed) for v in variants] == [("ort-static-qdq@seed7", 7), ("ort-static-qdq@seed8", 8)]
    assert all(v.replace(name="x", calibration_seed=42).to_dict() == preset("ort-static-qdq").replace(name="x").to_dict() for v in variants)
    assert cfg.quantize.seed_variants(preset("ort-dynamic")) == []
