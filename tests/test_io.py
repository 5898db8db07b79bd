import json

import pytest

from damoc.io import atomic_dir, write_json_atomic


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target, "prune", overwrite=True) as work:
        (work / "a.txt").write_text("first")
    assert (target / "a.txt").read_text() == "first"
    with pytest.raises(RuntimeError), atomic_dir(target, "prune", overwrite=True) as work:
        (work / "a.txt").write_text("half")
        raise RuntimeError("crash mid-write")
    assert (target / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert (target / ".damoc-run.json").exists()


def test_write_json_atomic_leaves_no_temp_files(tmp_path):
    path = write_json_atomic(tmp_path / "sub" / "r.json", {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_atomic_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    from damoc.io import write_text_atomic

    mask = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "r.txt", "x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
