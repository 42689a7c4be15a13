import pytest

from sst2bench.data import EXPECTED_ROWS, load_sst2, load_sst2_tsv, read_split_tsv
from sst2bench.errors import UserError

# From shared/data/sst2/SOURCE.md.
SHA256 = {
    "validation": "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
    "train": "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1",
    "test": "69a938605609b3e6663b4487918fe1565eb293734e6e520d0366d1d412fd2a13",
}


def test_real_sst2_loads_with_counts_labels_and_checksums(sst2_dir):
    data, files = load_sst2_tsv(sst2_dir)
    assert {f.split: f.sha256 for f in files} == SHA256
    assert {split: len(data[split]) for split in data} == EXPECTED_ROWS
    validation = data["validation"]
    assert validation.column_names == ["idx", "sentence", "label"]
    assert validation[0] == {"idx": 0, "sentence": "it 's a charming and often affecting journey . ", "label": 1}
    assert sum(validation["label"]) == 444
    assert set(data["test"]["label"]) == {-1}
    assert list(data["test"]["idx"][:3]) == [0, 1, 2]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_missing_folder_says_how_to_provide_data(tmp_path):
    with pytest.raises(UserError, match="SST2_DATA_DIR"):
        load_sst2_tsv(tmp_path / "nowhere")


def test_missing_column_names_the_file(tmp_path):
    path = write(tmp_path, "validation.tsv", "sentence\nit 's good . \n")
    with pytest.raises(UserError, match=r"validation\.tsv: header is \['sentence'\]"):
        read_split_tsv(path, "validation")


def test_empty_sentence_names_the_line(tmp_path):
    path = write(tmp_path, "validation.tsv", "sentence\tlabel\nfine . \t1\n \t0\n")
    with pytest.raises(UserError, match=r"validation\.tsv:3: the sentence is empty"):
        read_split_tsv(path, "validation", check_rows=False)


def test_bad_label_and_wrong_column_count(tmp_path):
    path = write(tmp_path, "train.tsv", "sentence\tlabel\nfine . \t2\n")
    with pytest.raises(UserError, match=r"train\.tsv:2: label '2' is not 0 or 1"):
        read_split_tsv(path, "train", check_rows=False)
    path = write(tmp_path, "train.tsv", "sentence\tlabel\nfine\t.\t1\n")
    with pytest.raises(UserError, match=r"train\.tsv:2: expected 2 tab-separated columns, found 3"):
        read_split_tsv(path, "train", check_rows=False)


def test_truncated_file_is_caught(sst2_dir, tmp_path):
    lines = (sst2_dir / "validation.tsv").read_text().splitlines(keepends=True)
    (tmp_path / "validation.tsv").write_text("".join(lines[:500]))
    with pytest.raises(UserError, match="499 rows, GLUE's SST-2 validation split has 872"):
        load_sst2_tsv(tmp_path, splits=("validation",))


def test_quotes_are_text_not_csv_quoting(tmp_path):
    path = write(tmp_path, "validation.tsv", 'sentence\tlabel\n"a \t1\nb " c \t0\n')
    assert read_split_tsv(path, "validation", check_rows=False)["sentence"] == ['"a ', 'b " c ']


def test_no_folder_and_no_hub_is_one_clear_error(tmp_path, offline_hub, monkeypatch):
    monkeypatch.delenv("SST2_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="does not exist and the Hugging Face Hub is unreachable"):
        load_sst2("auto")
    with pytest.raises(UserError, match="missing does not exist"):
        load_sst2("auto", tmp_path / "missing")
    with pytest.raises(UserError, match="needs the Hugging Face Hub"):
        load_sst2("hub")
