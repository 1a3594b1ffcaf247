"""Uploaded zips: unpacked inside their folder only, bounded before writing, once per upload."""
from __future__ import annotations

import zipfile

import pytest

from attention_lens.cache import BoundedCache, remove_folder

from attention_lens.data import archives
from attention_lens.data.archives import extract_zip, extracted


def make_zip(path, entries: dict[str, str]):
    with zipfile.ZipFile(path, "w") as z:
        for name, text in entries.items():
            z.writestr(name, text)
    return path


def test_a_zip_unpacks_its_tree_inside_the_destination(tmp_path):
    z = make_zip(tmp_path / "run.zip", {"ema/summary.json": "{}", "ema/results.csv": "epoch\n1\n"})
    out = extract_zip(z, tmp_path / "x")
    assert (out / "ema" / "summary.json").read_text() == "{}"
    assert sorted(p.name for p in (out / "ema").iterdir()) == ["results.csv", "summary.json"]


# The second escapes to a sibling whose name starts with the extraction folder's name.
@pytest.mark.parametrize("entry,escaped", [("../../escaped.txt", "../escaped.txt"),
                                           ("../x-sibling/escaped.txt", "x-sibling/escaped.txt"),
                                           ("/tmp/absolute.txt", None)])
def test_entries_outside_the_extraction_folder_are_refused(tmp_path, entry, escaped):
    evil = make_zip(tmp_path / "evil.zip", {"fine.txt": "ok", entry: "x"})
    with pytest.raises(ValueError, match="unsafe path"):
        extract_zip(evil, tmp_path / "x")
    assert not (tmp_path / "x" / "fine.txt").exists()  # checked before anything is written
    if escaped:
        assert not (tmp_path / escaped).exists()


def test_declared_size_and_entry_count_are_bounded_before_writing(tmp_path):
    big = make_zip(tmp_path / "big.zip", {"a.txt": "x" * 600, "b.txt": "y" * 600})
    with pytest.raises(ValueError, match="more than 0 MB"):
        extract_zip(big, tmp_path / "x", max_bytes=1000)
    many = make_zip(tmp_path / "many.zip", {f"{i}.txt": "" for i in range(5)})
    with pytest.raises(ValueError, match="more than 4 entries"):
        extract_zip(many, tmp_path / "y", max_entries=4)
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_a_file_that_is_not_a_zip_gets_a_reason(tmp_path):
    fake = tmp_path / "run.zip"
    fake.write_text("summary.json, honest")
    with pytest.raises(ValueError, match="not a zip file"):
        extract_zip(fake, tmp_path / "x")


def test_an_upload_is_unpacked_once_and_a_changed_file_again(tmp_path, monkeypatch):
    monkeypatch.setattr(archives.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    z = make_zip(tmp_path / "up.zip", {"a.txt": "one"})
    first = extracted(z)
    assert extracted(z) == first and len(list((tmp_path / "tmp").iterdir())) == 1
    make_zip(z, {"a.txt": "two, longer"})  # same name, new content (size differs)
    second = extracted(z)
    assert second != first and (second / "a.txt").read_text() == "two, longer"


def test_the_cache_deletes_the_folders_it_evicts(tmp_path, monkeypatch):
    monkeypatch.setattr(archives.tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.setattr(archives, "_UNPACKED", BoundedCache(2, on_evict=remove_folder))
    (tmp_path / "tmp").mkdir()
    folders = [extracted(make_zip(tmp_path / f"{i}.zip", {"a.txt": str(i)})) for i in range(3)]
    assert not folders[0].exists() and folders[1].is_dir() and folders[2].is_dir()
