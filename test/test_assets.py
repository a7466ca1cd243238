"""Asset resolution, checks, the CLI, and fetching from a loopback-only HTTP server."""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from mocap_ros.assets import files as assets
from mocap_ros.assets.files import (
    DEFAULT_MANIFEST,
    FetchError,
    ManifestEntry,
    fetch_assets,
    is_synthetic,
    resolve_assets,
)
from mocap_ros.cli import assets as cli_assets
from mocap_ros.estimation.hmr.assets_check import check_assets

# --------------------------------------------------------------------------------------
# resolve / check


def test_resolve_repo_root_and_extra_data_forms(
    synthetic_assets_root: Path, synthetic_assets
) -> None:
    from_root = resolve_assets(synthetic_assets_root)
    from_extra = resolve_assets(synthetic_assets_root / "extra_data")
    assert from_root == from_extra
    assert from_root.checkpoint == synthetic_assets.checkpoint
    assert from_root.mean_params == synthetic_assets.mean_params
    assert from_root.smpl_model == synthetic_assets.smpl_model
    assert from_root.j_regressor_extra == synthetic_assets.j_regressor_extra
    male = resolve_assets(synthetic_assets_root, gender="male")
    assert male.smpl_model.name == "basicModel_m_lbs_10_207_0_v1.0.0.pkl"
    explicit = resolve_assets(synthetic_assets_root, checkpoint="/x/c.pt", smpl_model="/x/s.pkl")
    assert explicit.checkpoint == Path("/x/c.pt") and explicit.smpl_model == Path("/x/s.pkl")
    assert explicit.mean_params == from_root.mean_params
    with pytest.raises(ValueError, match="gender"):
        resolve_assets(synthetic_assets_root, gender="other")


def test_smpl_lookup_ignores_case_and_takes_renamed_copies(tmp_path: Path) -> None:
    smpl = tmp_path / "extra_data" / "smpl"
    smpl.mkdir(parents=True)
    (smpl / "basicmodel_m_lbs_10_207_0_v1.0.0.pkl").touch()  # SMPL 1.0.0's real spelling
    (smpl / "SMPL_NEUTRAL.pkl").touch()
    assert resolve_assets(tmp_path, gender="male").smpl_model.name.startswith("basicmodel_m")
    assert resolve_assets(tmp_path).smpl_model.name == "SMPL_NEUTRAL.pkl"
    assert resolve_assets(tmp_path, gender="female").smpl_model == (
        smpl / "basicModel_f_lbs_10_207_0_v1.0.0.pkl"
    )  # not there: the canonical path


def test_check_passes_on_synthetic_assets(synthetic_assets) -> None:
    assert check_assets(synthetic_assets, deep=True) == []
    assert is_synthetic(synthetic_assets)


def test_check_reports_each_missing_file_with_its_source(tmp_path: Path) -> None:
    problems = check_assets(resolve_assets(tmp_path), deep=True)
    by_asset = {p.asset: p for p in problems}
    assert set(by_asset) == {"checkpoint", "mean_params", "smpl_model", "j_regressor_extra"}
    assert all(p.message == "missing" for p in problems)
    assert "dl.fbaipublicfiles.com/eft/2020_05_31" in by_asset["checkpoint"].source
    assert "visiondata.cis.upenn.edu/spin/data.tar.gz" in by_asset["mean_params"].source
    assert "download_data_body_module.sh" in by_asset["mean_params"].source
    assert "smpl.is.tue.mpg.de" in by_asset["smpl_model"].source
    assert "register" in str(by_asset["smpl_model"])
    assert str(tmp_path / "extra_data" / "smpl") in str(by_asset["smpl_model"])
    assert not is_synthetic(resolve_assets(tmp_path))


def test_smplx_mode_names_the_smplx_files_to_run(tmp_path: Path) -> None:
    paths = resolve_assets(tmp_path, use_smplx=True)
    assert paths.checkpoint.name == assets.SMPLX_CHECKPOINT_NAME == paths.smplx_checkpoint.name
    assert paths.smpl_model.name == "SMPLX_NEUTRAL.pkl" and paths.smplx_model == paths.smpl_model
    assert paths.j_regressor_extra.name == "J_regressor_extra_smplx.npy"
    by_asset = {p.asset: p for p in check_assets(paths)}
    assert set(by_asset) == {"checkpoint", "mean_params", "smpl_model", "j_regressor_extra"}
    assert "smplx-03-28" in by_asset["checkpoint"].source
    assert "smpl-x.is.tue.mpg.de" in by_asset["smpl_model"].source
    smpl_dir = tmp_path / "extra_data" / "smpl"
    smpl_dir.mkdir(parents=True)
    (smpl_dir / "SMPLX_FEMALE.npz").touch()
    assert resolve_assets(tmp_path, gender="female", use_smplx=True).smpl_model.name == (
        "SMPLX_FEMALE.npz"
    )


def test_missing_files_for_the_pipeline(tmp_path: Path, synthetic_assets) -> None:
    assert assets.missing_files(synthetic_assets) == []
    missing = assets.missing_files(resolve_assets(tmp_path))
    assert len(missing) == 3 and all("get it:" in m for m in missing)  # no J_regressor_extra
    assert len(assets.missing_files(resolve_assets(tmp_path), need_body_model=False)) == 2
    err = assets.AssetError("missing model files:\n" + "\n".join(missing))
    assert isinstance(err, FileNotFoundError) and "smpl.is.tue.mpg.de" in str(err)


def test_synthetic_marker_in_root_and_extra_data(synthetic_assets_root: Path) -> None:
    assert (synthetic_assets_root / assets.SYNTHETIC_MARKER).is_file()
    assert (synthetic_assets_root / "extra_data" / assets.SYNTHETIC_MARKER).is_file()
    explicit = resolve_assets(
        None,
        checkpoint=str(
            synthetic_assets_root / "extra_data" / assets.PRETRAINED_DIR / assets.CHECKPOINT_NAME
        ),
    )
    assert is_synthetic(explicit)  # found from the file's parents


def test_deep_check_reports_every_broken_file(tmp_path: Path, synthetic_assets_root: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(synthetic_assets_root, root)
    paths = resolve_assets(root)
    paths.checkpoint.write_bytes(paths.checkpoint.read_bytes()[:1000])
    paths.smpl_model.write_bytes(paths.smpl_model.read_bytes()[:1000])
    with np.load(paths.mean_params) as npz:
        arrays = dict(npz)
    del arrays["cam"]
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    paths.mean_params.write_bytes(buf.getvalue())
    np.save(paths.j_regressor_extra, np.zeros((9, 100)))
    problems = check_assets(paths, deep=True)
    assert {p.asset for p in problems} == {
        "checkpoint",
        "smpl_model",
        "mean_params",
        "j_regressor_extra",
    }
    text = "\n".join(map(str, problems))
    assert "truncated or corrupt" in text and "missing keys: cam" in text and "(9, 100)" in text
    assert check_assets(paths, deep=False) == []  # files exist; only loading finds the damage


# --------------------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    """The real `mocap-ros` parser: a removed `assets` command fails these tests."""
    from mocap_ros.cli.main import build_parser

    return build_parser()


def test_cli_check_exit_codes(tmp_path: Path, synthetic_assets_root: Path, capsys) -> None:
    args = _parser().parse_args(["assets", "check", str(synthetic_assets_root)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "present and loadable" in out
    args = _parser().parse_args(["assets", "check", "--quick", str(tmp_path)])
    assert args.func(args) == 1
    out = capsys.readouterr().out
    assert "4 problem(s)" in out and "smpl.is.tue.mpg.de" in out


def test_cli_synthetic_and_fetch_are_wired() -> None:
    args = _parser().parse_args(["assets", "synthetic", "/tmp/x", "--seed", "3"])
    assert args.func is cli_assets.cmd_synthetic and args.seed == 3
    args = _parser().parse_args(["assets", "fetch", "/tmp/x", "--base-url", "http://127.0.0.1:1"])
    assert args.func is cli_assets.cmd_fetch and args.base_url == "http://127.0.0.1:1"
    with pytest.raises(SystemExit):
        _parser().parse_args(["assets"])


# --------------------------------------------------------------------------------------
# fetch, against a loopback server with Range support


class _Server:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1; can cut a response short once."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_once: dict[str, int] = {}  # path -> bytes to send before dropping the connection
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[6:-1])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                cut = server.cut_once.pop(self.path, None)
                self.wfile.write(body if cut is None else body[:cut])
                self.wfile.flush()
                if cut is not None:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture()
def server(synthetic_assets) -> Iterator[_Server]:
    rng = np.random.default_rng(0)
    tree = {
        "/spin/data.tar.gz": _tarball(
            {
                "data/smpl_mean_params.npz": Path(synthetic_assets.mean_params).read_bytes(),
                "data/J_regressor_extra.npy": Path(synthetic_assets.j_regressor_extra).read_bytes(),
                "data/J_regressor_h36m.npy": b"h36m",
            }
        ),
        "/eft/" + assets.CHECKPOINT_NAME: rng.bytes(300_000),
        "/eft/fairmocap_data/body_module/" + assets.SMPLX_CHECKPOINT_NAME: rng.bytes(1000),
        "/eft/fairmocap_data/body_module/J_regressor_extra_smplx.npy": rng.bytes(500),
    }
    with _Server() as srv:
        srv.files.update(tree)
        yield srv


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_fetch_downloads_into_layout_and_records_hashes(tmp_path: Path, server: _Server) -> None:
    log: list[str] = []
    results = fetch_assets(tmp_path, base_url_override=server.url, progress=log.append)
    extra = tmp_path / "extra_data"
    ckpt = extra / "body_module" / "pretrained_weights" / assets.CHECKPOINT_NAME
    assert ckpt.read_bytes() == server.files["/eft/" + assets.CHECKPOINT_NAME]
    assert (extra / "body_module" / "data_from_spin" / "smpl_mean_params.npz").is_file()
    assert (
        extra / "body_module" / "data_from_spin" / "J_regressor_h36m.npy"
    ).read_bytes() == b"h36m"
    assert not (extra / "body_module" / "data.tar.gz").exists()  # unpacked and removed
    assert (extra / "body_module" / "J_regressor_extra_smplx.npy").is_file()
    sums = (extra / "SHA256SUMS").read_text()
    assert f"{_sha(ckpt.read_bytes())}  body_module/pretrained_weights/" in sums
    assert f"{_sha(server.files['/spin/data.tar.gz'])}  body_module/data.tar.gz" in sums
    assert {r.status for r in results} == {"downloaded"}
    assert any("trust on first use" in n for r in results for n in r.notes)
    assert any(_sha(ckpt.read_bytes()) in line for line in log)  # the hash is printed
    assert all(path.startswith(("/spin/", "/eft/")) for path, _ in server.requests)
    # second run: everything present, nothing requested
    n = len(server.requests)
    again = fetch_assets(tmp_path, base_url_override=server.url, progress=log.append)
    assert {r.status for r in again} == {"present"} and len(server.requests) == n
    paths = resolve_assets(tmp_path)
    assert paths.mean_params.is_file() and paths.checkpoint.is_file()


def test_fetch_resumes_an_interrupted_part_file(tmp_path: Path, server: _Server) -> None:
    key = "/eft/" + assets.CHECKPOINT_NAME
    server.cut_once[key] = 100_000
    manifest = [e for e in DEFAULT_MANIFEST if e.name == "checkpoint"]
    with pytest.raises(FetchError, match="run again to resume"):
        fetch_assets(tmp_path, manifest, base_url_override=server.url, progress=lambda m: None)
    final = tmp_path / "extra_data" / manifest[0].dest
    part = final.with_name(final.name + ".part")
    assert not final.exists() and part.stat().st_size == 100_000
    results = fetch_assets(
        tmp_path, manifest, base_url_override=server.url, progress=lambda m: None
    )
    assert results[0].status == "resumed"
    assert (key, "bytes=100000-") in server.requests
    assert final.read_bytes() == server.files[key] and not part.exists()
    assert results[0].sha256 == _sha(server.files[key])


def test_fetch_rejects_a_hash_mismatch(tmp_path: Path, server: _Server) -> None:
    entry = ManifestEntry(
        "checkpoint",
        "https://dl.fbaipublicfiles.com/eft/" + assets.CHECKPOINT_NAME,
        "body_module/pretrained_weights/x.pt",
        sha256="0" * 64,
    )
    with pytest.raises(FetchError, match="does not match"):
        fetch_assets(tmp_path, [entry], base_url_override=server.url, progress=lambda m: None)
    folder = tmp_path / "extra_data" / "body_module" / "pretrained_weights"
    assert list(folder.iterdir()) == []  # neither the file nor its .part is left
    good = ManifestEntry(
        entry.name,
        entry.url,
        entry.dest,
        sha256=_sha(server.files["/eft/" + assets.CHECKPOINT_NAME]),
    )
    assert (
        fetch_assets(tmp_path, [good], base_url_override=server.url, progress=lambda m: None)[
            0
        ].status
        == "downloaded"
    )


def test_fetch_enforces_the_hash_recorded_on_first_use(tmp_path: Path, server: _Server) -> None:
    manifest = [e for e in DEFAULT_MANIFEST if e.name == "j_regressor_extra_smplx"]
    fetch_assets(tmp_path, manifest, base_url_override=server.url, progress=lambda m: None)
    final = tmp_path / "extra_data" / manifest[0].dest
    final.unlink()
    server.files["/eft/fairmocap_data/body_module/J_regressor_extra_smplx.npy"] = b"tampered"
    with pytest.raises(FetchError, match="does not match"):
        fetch_assets(tmp_path, manifest, base_url_override=server.url, progress=lambda m: None)
    assert not final.exists()


def test_fetch_refuses_archive_members_outside_the_target(tmp_path: Path, server: _Server) -> None:
    server.files["/spin/data.tar.gz"] = _tarball(
        {"data/../../../escaped.txt": b"x", "data/smpl_mean_params.npz": b"x"}
    )
    manifest = [e for e in DEFAULT_MANIFEST if e.name == "spin_data"]
    with pytest.raises(FetchError, match="outside"):
        fetch_assets(tmp_path, manifest, base_url_override=server.url, progress=lambda m: None)
    assert not list(tmp_path.rglob("escaped.txt"))


def test_fetch_reports_http_errors_and_refuses_other_schemes(
    tmp_path: Path, server: _Server
) -> None:
    entry = ManifestEntry("x", "https://example.invalid/missing.bin", "missing.bin")
    with pytest.raises(FetchError, match="404"):
        fetch_assets(tmp_path, [entry], base_url_override=server.url, progress=lambda m: None)
    local = ManifestEntry("x", "file:///etc/passwd", "passwd")
    with pytest.raises(FetchError, match="non-HTTP"):
        fetch_assets(tmp_path, [local], progress=lambda m: None)


def test_cli_fetch_from_a_mirror(tmp_path: Path, server: _Server, capsys) -> None:
    args = _parser().parse_args(
        ["assets", "fetch", str(tmp_path), "--base-url", server.url, "--no-smplx"]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "trust on first use" in out and "smpl.is.tue.mpg.de" in out
    assert not (tmp_path / "extra_data" / assets.J_REGRESSOR_EXTRA_SMPLX).exists()
