"""``xcloud demo`` and ``xcloud models``: what a new user runs first."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xcloud.cli import main


@pytest.mark.model
def test_demo_writes_zarr_png_and_summary(tmp_path, capsys):
    out = tmp_path / "demo_output"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "model='cascade'" in text and "cloud_shadow" in text
    assert "ran the fine model" in text  # the cascade's routing summary
    png = out / "quicklook.png"
    assert png.stat().st_size > 20_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mask = xr.open_zarr(out / "mask.zarr")["cloud_mask"]
    assert mask.attrs["xcloud_model"] == "cascade" and mask.dtype == np.uint8
    values = mask.values
    assert set(np.unique(values)) <= {0, 1, 2, 3, 255}
    # the bundled scene has broken cumulus over a lake shore and their dark shadows: clear, cloud
    # and shadow must all be found (the default, ukis-csmask through the cascade: 27.7 % clear,
    # 42.4 % cloud, 29.9 % shadow)
    assert 0.2 < (values == 0).mean() < 0.97 and (values == 1).mean() > 0.03
    assert (values == 3).mean() > 0.05
    # running it again over the same folder replaces the demo output
    assert main(["demo", "--out", str(out)]) == 0


def test_models_lists_what_runs_here(capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    for name in ("cascade", "fine", "ukis-csmask", "s2cloudless"):
        assert name in text


def test_mask_file_refuses_existing_store_and_missing_input(tmp_path, capsys):
    import pytest

    from xcloud.data import SAMPLE_PATH

    out = tmp_path / "m.zarr"
    assert main(["mask", str(SAMPLE_PATH), "--out", str(out), "--model", "fine"]) == 0
    before = xr.open_zarr(out)["cloud_mask"].values
    with pytest.raises(SystemExit, match="already exists; pass --overwrite"):
        main(["mask", str(SAMPLE_PATH), "--out", str(out)])
    np.testing.assert_array_equal(xr.open_zarr(out)["cloud_mask"].values, before)  # untouched
    with pytest.raises(SystemExit, match="does not exist"):
        main(["mask", str(tmp_path / "nope.tif"), "--out", str(tmp_path / "n.zarr")])
    assert not (tmp_path / "n.zarr").exists()


def test_mask_refuses_bad_numbers_and_contradictory_flags(tmp_path, capsys):
    """Bad --chunks / --workers are refused by the parser (they used to end in dask tracebacks),
    and --resume with --overwrite, or --resume on a local file, before anything is read."""
    import pytest

    from xcloud.data import SAMPLE_PATH

    out = tmp_path / "m.zarr"
    for flag, value in (("--chunks", "0"), ("--chunks", "abc"), ("--workers", "-1")):
        with pytest.raises(SystemExit) as e:
            main(["mask", str(SAMPLE_PATH), "--out", str(out), flag, value])
        assert e.value.code == 2
        assert f"argument {flag}: {value!r}: expected a whole number" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--resume keeps what the store already holds"):
        main(["mask", "--stac", "http://127.0.0.1:9", "--collection", "c", "--out", str(out),
              "--resume", "--overwrite"])  # fmt: skip
    with pytest.raises(SystemExit, match="--resume completes an interrupted --stac run"):
        main(["mask", str(SAMPLE_PATH), "--out", str(out), "--resume"])
    with pytest.raises(SystemExit) as e:
        main(["mask", str(SAMPLE_PATH), "--out", str(out), "--precision", "fp16"])
    assert e.value.code == 2 and "invalid choice: 'fp16'" in capsys.readouterr().err
    assert not out.exists()


def test_mask_file_in_bf16(tmp_path):
    from xcloud.data import SAMPLE_PATH

    out = tmp_path / "m.zarr"
    args = ["mask", str(SAMPLE_PATH), "--out", str(out), "--model", "fine"]
    assert main([*args, "--precision", "bf16"]) == 0
    m = xr.open_zarr(out)["cloud_mask"].load()
    assert m.attrs["xcloud_model"] == "fine" and m.attrs["xcloud_precision"] == "bf16"
    assert main([*args, "--overwrite"]) == 0
    m32 = xr.open_zarr(out)["cloud_mask"].load()
    assert m32.attrs["xcloud_precision"] == "auto"
    assert (m32.values == m.values).mean() >= 0.98


def test_cli_bad_paths_are_one_clear_line(tmp_path, capsys):
    """An unreadable input and an --out that cannot be written used to print tracebacks."""
    from xcloud.data import SAMPLE_PATH

    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff")
    assert main(["mask", str(junk), "--out", str(tmp_path / "a.zarr")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xcloud: error:") and "junk.tif" in err and "Traceback" not in err
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = blocker / "m.zarr"  # under a file: cannot be created
    assert main(["mask", str(SAMPLE_PATH), "--out", str(out), "--model", "fine"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xcloud: error:") and "Traceback" not in err and err.count("\n") == 1


def test_cli_quiet_prints_no_progress_for_local_files(tmp_path, capfd):
    from xcloud.data import SAMPLE_PATH

    out = tmp_path / "m.zarr"
    assert main(["mask", str(SAMPLE_PATH), "--out", str(out), "--model", "fine", "--quiet"]) == 0
    captured = capfd.readouterr()
    assert "[####" not in captured.out + captured.err and "Completed" not in captured.err
    assert "clear" in captured.out  # the summary is the result, not progress
