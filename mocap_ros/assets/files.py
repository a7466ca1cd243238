"""Where FrankMocap's body-module assets live, whether they are usable, and how to fetch them.

Layout (FrankMocap's ``extra_data/``, made by its ``scripts/download_data_body_module.sh``)::

    extra_data/body_module/pretrained_weights/2020_05_31-00_50_43-best-51.749683916568756.pt
    extra_data/body_module/pretrained_weights/smplx-03-28-46060-w_spin_mlc3d_46582-2089_...pt
    extra_data/body_module/data_from_spin/{smpl_mean_params.npz, J_regressor_extra.npy, ...}
    extra_data/body_module/J_regressor_extra_smplx.npy
    extra_data/smpl/basicModel_neutral_lbs_10_207_0_v1.0.0.pkl      (licensed, manual)
    extra_data/smpl/SMPLX_NEUTRAL.pkl                               (licensed, manual)

``fetch_assets`` downloads only what that script downloads, from the same public URLs. The
SMPL/SMPL-X model files need a registration and are never fetched. The pipeline and the tests
never call ``fetch_assets`` (tests run it against a local server only).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mocap_ros.io.smpl_file import SMPL_HELP

CHECKPOINT_NAME = "2020_05_31-00_50_43-best-51.749683916568756.pt"
SMPLX_CHECKPOINT_NAME = "smplx-03-28-46060-w_spin_mlc3d_46582-2089_2020_03_28-21_56_16.pt"
PRETRAINED_DIR = "body_module/pretrained_weights"
SPIN_DATA_DIR = "body_module/data_from_spin"
MEAN_PARAMS_NAME = "smpl_mean_params.npz"
J_REGRESSOR_EXTRA_NAME = "J_regressor_extra.npy"
J_REGRESSOR_EXTRA_SMPLX = "body_module/J_regressor_extra_smplx.npy"
SMPL_DIR = "smpl"
SYNTHETIC_MARKER = "SYNTHETIC.txt"
SHA256SUMS = "SHA256SUMS"

# Accepted names per gender, first = FrankMocap's. SMPL 1.0.0 really ships
# "basicmodel_m_..." in lower case next to "basicModel_f_...", so lookups ignore case.
SMPL_CANDIDATES: dict[str, tuple[str, ...]] = {
    "neutral": (
        "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
        "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl",
        "SMPL_NEUTRAL.pkl",
        "SMPL_NEUTRAL.npz",
    ),
    "male": (
        "basicModel_m_lbs_10_207_0_v1.0.0.pkl",
        "basicmodel_m_lbs_10_207_0_v1.1.0.pkl",
        "SMPL_MALE.pkl",
        "SMPL_MALE.npz",
    ),
    "female": (
        "basicModel_f_lbs_10_207_0_v1.0.0.pkl",
        "basicmodel_f_lbs_10_207_0_v1.1.0.pkl",
        "SMPL_FEMALE.pkl",
        "SMPL_FEMALE.npz",
    ),
}
SMPLX_CANDIDATES: dict[str, tuple[str, ...]] = {
    g: (f"SMPLX_{g.upper()}.pkl", f"SMPLX_{g.upper()}.npz") for g in SMPL_CANDIDATES
}

_SPIN_SOURCE = (
    "part of SPIN's http://visiondata.cis.upenn.edu/spin/data.tar.gz, which FrankMocap's "
    "scripts/download_data_body_module.sh unpacks as extra_data/body_module/"
    "data_from_spin/ (`mocap-ros assets fetch DIR`)"
)
SOURCES: dict[str, str] = {
    "checkpoint": (
        "public: https://dl.fbaipublicfiles.com/eft/" + CHECKPOINT_NAME + " (FrankMocap's "
        "scripts/download_data_body_module.sh; `mocap-ros assets fetch DIR`)"
    ),
    "smplx_checkpoint": (
        "public: https://dl.fbaipublicfiles.com/eft/fairmocap_data/body_module/"
        + SMPLX_CHECKPOINT_NAME
        + " (`mocap-ros assets fetch DIR`)"
    ),
    "mean_params": _SPIN_SOURCE,
    "j_regressor_extra": _SPIN_SOURCE,
    "j_regressor_extra_smplx": (
        "public: https://dl.fbaipublicfiles.com/eft/fairmocap_data/"
        "body_module/J_regressor_extra_smplx.npy (`mocap-ros assets fetch`)"
    ),
    "smpl_model": "licensed, manual: " + SMPL_HELP,
    "smplx_model": (
        "licensed, manual: register at https://smpl-x.is.tue.mpg.de and put "
        "SMPLX_NEUTRAL.pkl in extra_data/smpl/"
    ),
}


@dataclass
class AssetPaths:
    """Paths of one asset set.

    ``checkpoint``, ``mean_params`` and ``smpl_model`` are the files to run. In SMPL-X mode
    (``resolve_assets(use_smplx=True)``) those are FrankMocap's SMPL-X regressor checkpoint and
    ``SMPLX_NEUTRAL``; ``smplx_checkpoint``/``smplx_model``/``j_regressor_extra_smplx`` then
    name the same files (``items()`` lists each path once).
    """

    checkpoint: Path
    mean_params: Path
    smpl_model: Path
    smplx_model: Path | None = None
    smplx_checkpoint: Path | None = None
    j_regressor_extra: Path | None = None
    j_regressor_extra_smplx: Path | None = None
    root: Path | None = None  # the extra_data directory, when resolved from one

    def items(self) -> list[tuple[str, Path]]:
        """(field name, path) for every distinct path that is set, in field order."""
        seen: set[Path] = set()
        out = []
        for k, v in vars(self).items():
            if k != "root" and v is not None and v not in seen:
                seen.add(v)
                out.append((k, v))
        return out


@dataclass
class Problem:
    """One thing wrong with an asset: which, where, what, and where to get it."""

    asset: str
    path: Path | None
    message: str
    source: str = ""

    def __str__(self) -> str:
        where = f" ({self.path})" if self.path is not None else ""
        get = f"\n      get it: {self.source}" if self.source else ""
        return f"{self.asset}{where}: {self.message}{get}"


def _extra_data_dir(assets_dir: str | os.PathLike[str] | None) -> Path:
    """extra_data/ from either FrankMocap's repo root or extra_data/ itself."""
    d = Path("." if assets_dir is None else assets_dir).expanduser()
    if (d / "extra_data").is_dir():
        return d / "extra_data"
    if d.name == "extra_data" or (d / "body_module").is_dir() or (d / SMPL_DIR).is_dir():
        return d
    return d / "extra_data"  # does not exist: check_assets will say so, with this path


def _find_case_insensitive(directory: Path, names: Sequence[str]) -> Path | None:
    if not directory.is_dir():
        return None
    present = {p.name.lower(): p for p in directory.iterdir() if p.is_file()}
    for name in names:
        hit = present.get(name.lower())
        if hit is not None:
            return hit
    return None


class AssetError(FileNotFoundError):
    """Required asset files are missing; the message lists them and where to get them."""


def source_of(asset: str, path: Path | None) -> str:
    """Where to get an asset; SMPL-X files are told apart by their file names."""
    smplx = path is not None and "smplx" in path.name.lower()
    if asset in ("checkpoint", "smplx_checkpoint"):
        return SOURCES["smplx_checkpoint" if smplx else "checkpoint"]
    if asset in ("smpl_model", "smplx_model"):
        return SOURCES["smplx_model" if smplx else "smpl_model"]
    if asset.startswith("j_regressor_extra"):
        return SOURCES["j_regressor_extra_smplx" if smplx else "j_regressor_extra"]
    return SOURCES.get(asset, "")


def resolve_assets(
    assets_dir: str | os.PathLike[str] | None,
    checkpoint: str | None = None,
    mean_params: str | None = None,
    smpl_model: str | None = None,
    gender: str = "neutral",
    use_smplx: bool = False,
) -> AssetPaths:
    """Paths of the assets in FrankMocap's layout; explicit paths override. Nothing is loaded.

    ``assets_dir`` may be FrankMocap's repo root (containing ``extra_data/``) or
    ``extra_data/`` itself; None means the current directory (FrankMocap runs from its root).
    The SMPL file is looked up under its FrankMocap name and the usual renamed copies
    (``SMPL_NEUTRAL.pkl`` ...), ignoring case. With ``use_smplx`` the files to run are
    FrankMocap's SMPL-X checkpoint and ``SMPLX_<GENDER>.pkl``/``.npz`` (explicit
    ``checkpoint``/``smpl_model`` then name SMPL-X files). Missing files are not an error here.
    """
    if gender not in SMPL_CANDIDATES:
        raise ValueError(f"gender must be one of {sorted(SMPL_CANDIDATES)}, got {gender!r}")
    extra = _extra_data_dir(assets_dir)
    smpl_dir = extra / SMPL_DIR
    names = (SMPLX_CANDIDATES if use_smplx else SMPL_CANDIDATES)[gender]
    model = _find_case_insensitive(smpl_dir, names) or smpl_dir / names[0]
    ckpt = extra / PRETRAINED_DIR / (SMPLX_CHECKPOINT_NAME if use_smplx else CHECKPOINT_NAME)
    jre = extra / (
        J_REGRESSOR_EXTRA_SMPLX if use_smplx else f"{SPIN_DATA_DIR}/{J_REGRESSOR_EXTRA_NAME}"
    )
    paths = AssetPaths(
        checkpoint=Path(checkpoint) if checkpoint else ckpt,
        mean_params=Path(mean_params) if mean_params else extra / SPIN_DATA_DIR / MEAN_PARAMS_NAME,
        smpl_model=Path(smpl_model) if smpl_model else model,
        j_regressor_extra=jre,
        root=extra,
    )
    if use_smplx:
        paths.smplx_model, paths.smplx_checkpoint = paths.smpl_model, paths.checkpoint
        paths.j_regressor_extra_smplx = jre
    return paths


def missing_files(paths: AssetPaths, need_body_model: bool = True) -> list[str]:
    """Required files that do not exist, each with where to get it (cheap: no loading).

    The J_regressor_extra files are optional (only FrankMocap's 49-joint output uses them);
    the body model is optional when ``need_body_model`` is False (skeleton-only mode).
    """
    out = []
    for name, path in paths.items():
        if name.startswith("j_regressor_extra"):
            continue
        if name in ("smpl_model", "smplx_model") and not need_body_model:
            continue
        if not path.is_file():
            out.append(str(Problem(name, path, "missing", source_of(name, path))))
    return out


def is_synthetic(paths: AssetPaths) -> bool:
    """True when the assets are generated stand-ins (``mocap_ros.tools.synthetic``): the
    marker file is present."""
    candidates = [paths.root] if paths.root is not None else []
    for _, p in paths.items():
        candidates.extend(list(p.parents)[:4])
    return any(c is not None and (c / SYNTHETIC_MARKER).is_file() for c in candidates)


# --------------------------------------------------------------------------------------
# Fetching the public files.


@dataclass(frozen=True)
class ManifestEntry:
    """One public download. ``dest`` is relative to extra_data/.

    ``sha256`` None means unknown: the first download's hash is recorded in SHA256SUMS (trust
    on first use) and later downloads must match it. ``extract_to`` marks a tar archive whose
    ``strip`` top-level folder is unpacked into that folder (relative to extra_data/); the
    entry counts as present when all of ``provides`` exist.
    """

    name: str
    url: str
    dest: str
    sha256: str | None = None
    extract_to: str | None = None
    strip: str | None = None
    provides: tuple[str, ...] = ()


DEFAULT_MANIFEST: tuple[ManifestEntry, ...] = (
    ManifestEntry(
        "spin_data",
        "http://visiondata.cis.upenn.edu/spin/data.tar.gz",
        "body_module/data.tar.gz",
        extract_to=SPIN_DATA_DIR,
        strip="data",
        provides=(
            f"{SPIN_DATA_DIR}/{MEAN_PARAMS_NAME}",
            f"{SPIN_DATA_DIR}/{J_REGRESSOR_EXTRA_NAME}",
        ),
    ),
    ManifestEntry(
        "checkpoint",
        "https://dl.fbaipublicfiles.com/eft/" + CHECKPOINT_NAME,
        f"{PRETRAINED_DIR}/{CHECKPOINT_NAME}",
    ),
    ManifestEntry(
        "smplx_checkpoint",
        "https://dl.fbaipublicfiles.com/eft/fairmocap_data/body_module/" + SMPLX_CHECKPOINT_NAME,
        f"{PRETRAINED_DIR}/{SMPLX_CHECKPOINT_NAME}",
    ),
    ManifestEntry(
        "j_regressor_extra_smplx",
        "https://dl.fbaipublicfiles.com/eft/fairmocap_data/body_module/J_regressor_extra_smplx.npy",
        J_REGRESSOR_EXTRA_SMPLX,
    ),
)


class FetchError(RuntimeError):
    """A download failed or did not match its expected SHA-256."""


@dataclass
class FetchResult:
    name: str
    path: Path
    sha256: str | None
    status: str  # "downloaded", "resumed", "present"
    notes: list[str] = field(default_factory=list)


_CHUNK = 1 << 20


def _mirror_url(url: str, base_url_override: str | None) -> str:
    """Same path on another host: a mirror of the original URLs' directory structure."""
    if not base_url_override:
        return url
    return base_url_override.rstrip("/") + urllib.parse.urlsplit(url).path


def _read_sums(path: Path) -> dict[str, str]:
    sums: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.split(maxsplit=1)
            if len(parts) == 2:
                sums[parts[1].lstrip("*").strip()] = parts[0].lower()
    return sums


def _write_sums(path: Path, sums: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{h}  {name}\n" for name, h in sorted(sums.items())))
    os.replace(tmp, path)


def _sha256_file(path: Path) -> Any:  # a hashlib hash object
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h


def _download(
    url: str, part: Path, timeout: float, progress: Callable[[str], None]
) -> tuple[str, bool]:
    """Download ``url`` into ``part``, resuming with an HTTP Range request. (sha256, resumed)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"refusing non-HTTP URL {url}")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "mocap_ros-assets"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part file is complete
            return _sha256_file(part).hexdigest(), True
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(f"{url}: {exc}") from exc
    with resp:
        resumed = (
            have > 0
            and resp.status == 206
            and (resp.headers.get("Content-Range", "").startswith(f"bytes {have}-"))
        )
        if have and not resumed:
            progress(f"  server did not resume {part.name}; starting over")
            have = 0
        h = _sha256_file(part) if resumed else hashlib.sha256()
        length = resp.headers.get("Content-Length")
        expected_total = have + int(length) if length and length.isdigit() else None
        got = have
        try:
            with part.open("ab" if resumed else "wb") as out:
                for block in iter(lambda: resp.read(_CHUNK), b""):
                    out.write(block)
                    h.update(block)
                    got += len(block)
        except (OSError, http.client.HTTPException) as exc:  # IncompleteRead is an HTTPException
            raise FetchError(
                f"{url}: interrupted after {got} bytes ({exc!r}); run again to resume"
            ) from exc
    if expected_total is not None and got != expected_total:
        raise FetchError(f"{url}: got {got} of {expected_total} bytes; run again to resume")
    return h.hexdigest(), resumed


def _safe_extract(archive: Path, strip: str | None, target: Path) -> list[str]:
    """Unpack regular files/dirs of a tar into ``target`` (no links, nothing outside it)."""
    written: list[str] = []
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            name = member.name
            while name.startswith("./"):
                name = name[2:]
            if strip:
                if name == strip or not name.startswith(strip + "/"):
                    continue
                name = name[len(strip) + 1 :]
            if not name:
                continue
            dest = (target / name).resolve()
            if root not in dest.parents and dest != root:
                raise FetchError(f"{archive}: member {member.name!r} would land outside {target}")
            if member.isdir():
                dest.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if src is None:
                    continue
                with src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
                written.append(name)
            # links, devices, fifos: skipped on purpose (a data archive has no use for them)
    return written


def fetch_assets(
    dest: str | os.PathLike[str],
    manifest: Sequence[ManifestEntry] = DEFAULT_MANIFEST,
    base_url_override: str | None = None,
    progress: Callable[[str], None] = print,
    timeout: float = 60.0,
) -> list[FetchResult]:
    """Download the public FrankMocap body-module files into ``dest``'s extra_data layout.

    ``dest`` is FrankMocap's repo root or ``extra_data/`` (as in ``resolve_assets``).
    Interrupted downloads stay as ``<file>.part`` and resume with an HTTP Range request.
    SHA-256: a manifest hash is enforced; otherwise the hash recorded in ``SHA256SUMS`` by an
    earlier fetch is enforced; otherwise the hash seen now is recorded and printed (trust on
    first use: compare it with a colleague's copy). On a mismatch the part file is deleted and
    ``FetchError`` raised. ``base_url_override`` fetches the same paths from a mirror.
    """
    extra = _extra_data_dir(dest)
    extra.mkdir(parents=True, exist_ok=True)
    sums_path = extra / SHA256SUMS
    sums = _read_sums(sums_path)
    results: list[FetchResult] = []
    for entry in manifest:
        final = extra / entry.dest
        if entry.provides and all((extra / p).is_file() for p in entry.provides):
            progress(f"{entry.name}: present ({', '.join(entry.provides)})")
            results.append(FetchResult(entry.name, extra / entry.provides[0], None, "present"))
            continue
        expected = (entry.sha256 or sums.get(entry.dest) or "").lower() or None
        if final.is_file():
            digest = _sha256_file(final).hexdigest()
            if expected and digest != expected:
                raise FetchError(
                    f"{final}: SHA-256 {digest} does not match expected {expected}; "
                    "delete it to download again"
                )
            status = "present"
        else:
            url = _mirror_url(entry.url, base_url_override)
            part = final.with_name(final.name + ".part")
            final.parent.mkdir(parents=True, exist_ok=True)
            progress(f"{entry.name}: downloading {url}")
            digest, resumed = _download(url, part, timeout, progress)
            if expected and digest != expected:
                part.unlink(missing_ok=True)
                raise FetchError(
                    f"{url}: SHA-256 {digest} does not match expected {expected}; "
                    "the partial file was deleted"
                )
            os.replace(part, final)
            status = "resumed" if resumed else "downloaded"
        result = FetchResult(entry.name, final, digest, status)
        if not expected:
            sums[entry.dest] = digest
            _write_sums(sums_path, sums)
            result.notes.append(f"sha256 {digest} recorded in {sums_path} (trust on first use)")
        progress(f"{entry.name}: {status} {final} sha256={digest}")
        if entry.extract_to:
            files = _safe_extract(final, entry.strip, extra / entry.extract_to)
            progress(f"{entry.name}: unpacked {len(files)} files into {extra / entry.extract_to}")
            missing = [p for p in entry.provides if not (extra / p).is_file()]
            if missing:
                raise FetchError(f"{final}: archive did not contain {', '.join(missing)}")
            final.unlink()  # as FrankMocap's script does; SHA256SUMS keeps its hash
            result.path = extra / entry.extract_to
        results.append(result)
    return results
