"""`llmlab doctor`: what this machine has, and which chapters can run here.

Each check is `ok`, `missing` (a library or model that is not installed) or
`broken` (installed but failing). The exit code is 1 when any check is broken,
and with `strict=True` also when one is missing.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
from pathlib import Path

import torch

from llmlab.errors import LlmlabError
from llmlab.profiles import ROLES, model_id, resolve_profile
from llmlab.runtime import installed_versions

# Distributions whose versions the report lists, in the book's order of use.
BOOK_LIBRARIES = (
    "torch", "transformers", "peft", "bitsandbytes", "accelerate", "datasets",
    "trl", "sentence-transformers", "faiss-cpu", "faiss-gpu", "openai",
    "fastapi", "uvicorn",
)
# Free disk below this is reported as a problem: a 1.5B model in float16 plus
# the pip cache needs a few GB.
MIN_FREE_DISK_GIB = 5.0


@dataclasses.dataclass
class Check:
    """One line of the report: what was checked, its status and the details."""

    name: str
    status: str  # "ok", "missing", "broken" or "info"
    detail: str


@dataclasses.dataclass
class DoctorReport:
    """The doctor's checks and the per-chapter verdicts."""

    profile: str
    checks: list[Check]
    chapters: list[Check]
    strict: bool = False

    @property
    def broken(self) -> list[Check]:
        return [c for c in self.checks + self.chapters if c.status == "broken"]

    @property
    def missing(self) -> list[Check]:
        return [c for c in self.checks + self.chapters if c.status == "missing"]

    @property
    def exit_code(self) -> int:
        failed = self.broken + (self.missing if self.strict else [])
        return 1 if failed else 0

    def __str__(self) -> str:
        lines = [f"llmlab doctor (profile {self.profile})", ""]
        lines += [_format(check) for check in self.checks]
        lines += ["", "Chapters:"]
        lines += [_format(check) for check in self.chapters]
        lines += ["", self._summary()]
        return "\n".join(lines)

    __repr__ = __str__

    def _summary(self) -> str:
        if self.broken:
            names = ", ".join(check.name for check in self.broken)
            return f"Broken: {names}. See the details above for the fix."
        if self.missing:
            return f"{len(self.missing)} missing, nothing broken."
        return "Everything the chapters need works."


def _format(check: Check) -> str:
    return f"  [{check.status:^7}] {check.name:<34} {check.detail}"


def doctor(profile: str | None = None, strict: bool = False) -> DoctorReport:
    """Check this machine and return the report; display or print it to read it.

    Args:
        profile: the profile to judge the chapters under; default None as
            `llmlab.resolve_profile()`.
        strict: count missing libraries and models as failures in
            `exit_code`. Default False: only broken ones fail.
    """
    profile = resolve_profile(profile)
    device = "cuda" if torch.cuda.is_available() and profile != "offline" else "cpu"
    checks = _library_checks() + [_torch_build_check(), _gpu_check()]
    quantized = {q: check_quantized(q, device) for q in ("4bit", "8bit")}
    checks += list(quantized.values())
    checks += [check_faiss(), *_model_checks(profile), _disk_check()]
    chapters = _chapter_checks(checks, quantized, device)
    return DoctorReport(profile, checks, chapters, strict)


def _library_checks() -> list[Check]:
    checks = []
    versions = installed_versions(BOOK_LIBRARIES)
    for name, version in versions.items():
        if name.startswith("faiss-"):
            continue  # faiss-cpu and faiss-gpu are listed once below, as "faiss"
        status = "missing" if version == "not installed" else "ok"
        checks.append(Check(name, status, version))
    builds = [f"{versions[name]} ({name})" for name in ("faiss-cpu", "faiss-gpu")
              if versions[name] != "not installed"]
    if builds:
        checks.append(Check("faiss", "ok", ", ".join(builds)))
    else:
        checks.append(Check("faiss", "missing", "not installed"))
    return checks


def _torch_build_check() -> Check:
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU only"
    return Check("torch build", "info", f"{torch.__version__} ({build})")


def _gpu_check() -> Check:
    if not torch.cuda.is_available():
        return Check("GPU", "info", "none: chapters run on the CPU with tiny models")
    props = torch.cuda.get_device_properties(0)
    bf16 = "bf16 supported" if torch.cuda.is_bf16_supported() else "no bf16 (fp16)"
    detail = (f"{props.name}, {props.total_memory / 2**30:.1f} GiB, "
              f"sm {props.major}.{props.minor}, {bf16}")
    return Check("GPU", "info", detail)


def check_quantized(quantization: str, device: str) -> Check:
    """Run a real bitsandbytes matmul of `quantization` on `device`."""
    from llmlab.loading import probe_quantized_matmul

    name = f"bitsandbytes {quantization} matmul"
    if importlib.util.find_spec("bitsandbytes") is None:
        return Check(name, "missing", "bitsandbytes not installed")
    try:
        error = probe_quantized_matmul(quantization, device)
    except LlmlabError as failure:
        return Check(name, "broken", str(failure))
    return Check(name, "ok", f"on {device}, relative error {error:.3f}")


def check_faiss() -> Check:
    """Build a 3-vector inner-product index and check its top hit."""
    if importlib.util.find_spec("faiss") is None:
        return Check("faiss search", "missing", "not installed: pip install faiss-cpu")
    try:
        import faiss
        import numpy as np

        vectors = np.eye(3, 8, dtype="float32")
        index = faiss.IndexFlatIP(8)
        index.add(vectors)
        _, ids = index.search(vectors[1:2], 1)
    except Exception as error:  # a broken build raises many exception types
        return Check("faiss search", "broken", f"{type(error).__name__}: {error}")
    if int(ids[0, 0]) != 1:
        return Check("faiss search", "broken", f"wrong top hit {int(ids[0, 0])}")
    return Check("faiss search", "ok", "inner-product index returns the right hit")


def _model_checks(profile: str) -> list[Check]:
    checks = []
    for role in ROLES:
        try:
            source = model_id(role, profile)
        except LlmlabError as error:
            checks.append(Check(f"model: {role}", "missing", str(error)))
            continue
        local = Path(source).is_dir()
        detail = source if local else f"{source} (hub, downloaded on first use)"
        checks.append(Check(f"model: {role}", "ok", detail))
    return checks


def _disk_check() -> Check:
    free_gib = shutil.disk_usage(Path.home()).free / 2**30
    detail = f"{free_gib:.0f} GiB free in {Path.home()}"
    if free_gib < MIN_FREE_DISK_GIB:
        low = f"{detail}, below {MIN_FREE_DISK_GIB:.0f} GiB"
        return Check("free disk", "missing", low)
    return Check("free disk", "ok", detail)


def _chapter_checks(checks: list[Check], quantized: dict, device: str) -> list[Check]:
    status = {check.name: check.status for check in checks}
    on_gpu = device == "cuda"
    speed = "fast" if on_gpu else "on CPU"
    return [
        _chapter("Tokenizers, attention, generation", status,
                 ["transformers", "model: base", "model: chat"], speed),
        _chapter("LoRA fine-tuning", status,
                 ["peft", "accelerate", "model: base"], speed),
        _chapter("QLoRA (4-bit)", status,
                 ["peft", "bitsandbytes 4bit matmul", "model: base"],
                 "fast" if on_gpu else "on CPU, slow"),
        _chapter("8-bit inference", status,
                 ["bitsandbytes 8bit matmul", "model: chat"],
                 "fast" if on_gpu else "on CPU, slow"),
        _chapter("Instruction and preference tuning", status,
                 ["trl", "datasets", "model: chat"], speed),
        _chapter("Retrieval (RAG)", status,
                 ["sentence-transformers", "faiss search", "model: embedder"], speed),
        _chapter("Serving", status, ["fastapi", "uvicorn", "openai"], "runs"),
    ]


def _chapter(title: str, status: dict[str, str], needs: list[str], how: str) -> Check:
    broken = [name for name in needs if status.get(name) == "broken"]
    missing = [name for name in needs if status.get(name) == "missing"]
    if broken:
        return Check(title, "broken", f"cannot run: broken {', '.join(broken)}")
    if missing:
        return Check(title, "missing", f"cannot run: missing {', '.join(missing)}")
    return Check(title, "ok", f"runs {how}" if how != "runs" else "runs")

