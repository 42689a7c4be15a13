"""Any labelled table (CSV, TSV, JSONL, Parquet, a Hub id) loads in SST-2's shape, or stops with one line naming file and row."""

import json
from pathlib import Path

import pytest

from sst2bench.cli import main
from sst2bench.errors import MissingPrerequisite, UserError
from sst2bench.tables import is_file_source, load_labelled, parse_label_map

OOD = Path("/work/shared/data/ood-sentences")
STARS = ["1=NEGATIVE", "2=NEGATIVE", "4=POSITIVE", "5=POSITIVE"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_scores_a_csv_with_its_own_columns_and_labels(tiny_model_dir, tmp_path, capsys, monkeypatch):
    (tmp_path / "reviews.csv").write_text('review,stars\ngood film,5\n"awful, a mess",1\nboring and dull,2\n"charming\nand moving",4\n')
    monkeypatch.chdir(tmp_path)  # a relative --data is read from where the user typed it
    out_dir = tmp_path / "out"
    code, out, err = run(
        capsys,
        "evaluate",
        "--model",
        tiny_model_dir,
        "--data",
        "reviews.csv",
        "--text-column",
        "review",
        "--label-column",
        "stars",
        "--label-map",
        *STARS,
        "--output",
        out_dir,
        "--quiet",
    )
    assert code == 0, err
    result = json.loads((out_dir / "accuracy.json").read_text())
    assert result["n"] == 4 and f"{result['correct']}/4" in out and f"{100 * result['accuracy']:.2f}" in out
    records = [json.loads(line) for line in (out_dir / result["predictions"]).read_text().splitlines()]
    assert [(r["idx"], r["gold"]) for r in records] == [(0, 1), (1, 0), (2, 0), (3, 1)]
    params = result["provenance"]["params"]
    assert params["data"] == str(tmp_path / "reviews.csv") and params["label_map"]["5"] == "POSITIVE"
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([result["predictions"], "accuracy.json"])


def test_the_label_map_can_be_json_and_limit_applies(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "r.jsonl").write_text('{"text": "good film", "y": "pos"}\n{"text": "dull", "y": "neg"}\n{"text": "fun", "y": "pos"}\n')
    code, _, err = run(
        capsys,
        "evaluate",
        "--model",
        tiny_model_dir,
        "--data",
        tmp_path / "r.jsonl",
        "--text-column",
        "text",
        "--label-column",
        "y",
        "--label-map",
        '{"pos": "POSITIVE", "neg": "NEGATIVE"}',
        "--limit",
        "2",
        "--output",
        tmp_path / "out",
        "--quiet",
    )
    assert code == 0, err
    assert json.loads((tmp_path / "out" / "accuracy.json").read_text())["n"] == 2


BAD = {
    "missing column": ("m.csv", "text,stars\ngood film,5\n", r"m\.csv:1: no text column 'review'; columns found: 'text', 'stars'"),
    "label outside the map": (
        "o.csv",
        "review,stars\ngood film,5\nmeh,3\n",
        r"o\.csv:3: label '3' is not in the label map \(its keys: '1', '2', '4', '5'\)",
    ),
    "empty file": ("e.csv", "", r"e\.csv: the file is empty"),
    "header only": ("h.csv", "review,stars\n", r"h\.csv: no rows after the header"),
    "empty text": ("t.csv", "review,stars\ngood film,5\n   ,1\n", r"t\.csv:3: the text in 'review' is empty"),
    "bad JSONL line": ("j.jsonl", '{"review": "good", "stars": 5}\n\n{"review": "bad" "stars": 1}\n', r"j\.jsonl:3: not valid JSON"),
    "TSV field count": (
        "f.tsv",
        "review\tstars\ngood\t5\nbad\t1\textra\n",
        r"f\.tsv:3: expected 2 tab-separated fields like the header, found 3",
    ),
    "unknown suffix": ("u.txt", "review,stars\ngood,5\n", r"u\.txt: unknown file type '\.txt'; use \.csv, \.tsv, \.jsonl or \.parquet"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_ends_in_one_line_naming_file_and_row_and_writes_nothing(case, tiny_model_dir, tmp_path, capsys):
    import re

    name, content, message = BAD[case]
    (tmp_path / name).write_text(content)
    out_dir = tmp_path / "out"
    argv = ["evaluate", "--model", tiny_model_dir, "--data", tmp_path / name, "--output", out_dir, "--quiet"]
    code, out, err = run(capsys, *argv, "--text-column", "review", "--label-column", "stars", "--label-map", *STARS)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("sst2bench: error:") and "Traceback" not in err
    assert re.search(message, err), err
    assert str(tmp_path / name) in err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_a_tsv_reads_with_quoting_off(tmp_path):
    (tmp_path / "q.tsv").write_text('sentence\tlabel\n" The start is a quote.\t1\nplain\t0\nit is "quoted" inside\t1\n')
    split = load_labelled(str(tmp_path / "q.tsv"))
    assert split["sentence"] == ['" The start is a quote.', "plain", 'it is "quoted" inside']
    assert split["label"] == [1, 0, 1] and split["idx"] == [0, 1, 2]


def test_the_real_imdb_file_has_1000_rows_six_starting_with_a_quote(sst2_dir):
    from sst2bench.data import load_sst2_tsv

    split = load_labelled(str(OOD / "imdb.tsv"))
    assert len(split) == 1000 and split["idx"] == list(range(1000))
    assert sum(s.startswith('"') for s in split["sentence"]) == 6
    assert sorted(set(split["label"])) == [0, 1] and sum(split["label"]) == 500
    sst2 = load_sst2_tsv(sst2_dir, splits=("validation",))[0]["validation"]
    assert split.features == sst2.features and split.column_names == sst2.column_names


def test_jsonl_and_parquet_load(tmp_path):
    import pandas as pd

    rows = [{"text": "good film", "stars": 5, "extra": 1}, {"text": "awful", "stars": 1, "extra": 2}]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pd.DataFrame(rows).to_parquet(tmp_path / "r.parquet")
    for name in ("r.jsonl", "r.parquet"):
        split = load_labelled(str(tmp_path / name), text_column="text", label_column="stars", label_map={5: "POSITIVE", "1": 0})
        assert split.column_names == ["idx", "sentence", "label"]
        assert split.to_dict() == {"idx": [0, 1], "sentence": ["good film", "awful"], "label": [1, 0]}, name
    pd.DataFrame({"sentence": ["ok", "  "], "label": [1, 0]}).to_parquet(tmp_path / "b.parquet")
    with pytest.raises(UserError, match=r"b\.parquet: row index 1: the text in 'sentence' is empty"):
        load_labelled(str(tmp_path / "b.parquet"))


def test_labels_without_a_map_must_be_0_or_1(tmp_path):
    (tmp_path / "l.csv").write_text("sentence,label\nfine,1\nbad,0\nworse,negative\n")
    with pytest.raises(UserError, match=r"l\.csv:4: label 'negative' is not 0 or 1; give a label map"):
        load_labelled(str(tmp_path / "l.csv"))


def test_line_numbers_count_lines_not_records(tmp_path):
    (tmp_path / "ml.csv").write_text('sentence,label\n"two\nlines",1\n"",0\n')
    with pytest.raises(UserError, match=r"ml\.csv:4: the text in 'sentence' is empty"):
        load_labelled(str(tmp_path / "ml.csv"))


def test_label_map_parsing():
    assert parse_label_map(["1=NEGATIVE", "5=POSITIVE"]) == {"1": "NEGATIVE", "5": "POSITIVE"}
    assert parse_label_map(['{"neg": 0, "pos": 1}']) == {"neg": 0, "pos": 1}
    assert parse_label_map(None) is None
    with pytest.raises(UserError, match="not VALUE=NEGATIVE"):
        parse_label_map(["POSITIVE"])
    with pytest.raises(UserError, match="use NEGATIVE or POSITIVE"):
        load_labelled(str(OOD / "imdb.tsv"), label_map={"1": "GOOD"})


def test_file_or_hub_id():
    assert is_file_source("not/here.tsv") and is_file_source("./x") and is_file_source("/abs/path")
    assert not is_file_source("stanfordnlp/imdb") and not is_file_source("imdb")


def test_an_offline_hub_id_fails_with_the_hub_message(offline_hub, tiny_model_dir, tmp_path, capsys):
    with pytest.raises(MissingPrerequisite, match="dataset stanfordnlp/imdb needs the Hugging Face Hub"):
        load_labelled("stanfordnlp/imdb", text_column="text")
    out_dir = tmp_path / "out"
    code, _, err = run(capsys, "evaluate", "--model", tiny_model_dir, "--data", "stanfordnlp/imdb", "--output", out_dir, "--quiet")
    assert code == 2 and "Hugging Face Hub, which is unreachable" in err and err.count("\n") == 1
    assert not out_dir.exists()
