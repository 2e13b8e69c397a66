"""Distributions an install changed, and whether the Python process must restart.

A Colab runtime comes with torch and transformers already imported by some
cells. When pip then replaces a package that is already imported, the process
keeps running the old code until the runtime restarts, and the mix of old and
new modules fails in confusing ways.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import sys
import warnings

from packaging.version import InvalidVersion, Version

from llmlab.errors import RestartRequiredWarning

# Import name -> distribution name for the libraries the book imports. The
# check compares each imported module's `__version__` with its distribution.
BOOK_MODULES = {
    "torch": "torch",
    "transformers": "transformers",
    "peft": "peft",
    "bitsandbytes": "bitsandbytes",
    "accelerate": "accelerate",
    "datasets": "datasets",
    "trl": "trl",
    "sentence_transformers": "sentence-transformers",
    "tokenizers": "tokenizers",
    "huggingface_hub": "huggingface-hub",
    "safetensors": "safetensors",
    "numpy": "numpy",
    "openai": "openai",
    "llmlab": "llmlab",
}


@dataclasses.dataclass
class InstallReport:
    """Distributions an install added or changed, and the modules to reload.

    `changed` maps a distribution name to its (before, after) versions.
    `restart_modules` lists the imported modules whose distribution changed.
    """

    added: dict[str, str]
    changed: dict[str, tuple[str, str]]
    restart_modules: list[str]

    @property
    def restart_needed(self) -> bool:
        return bool(self.restart_modules)


def installed_distributions() -> dict[str, str]:
    """Return {lower-case distribution name: version} for this environment."""
    importlib.invalidate_caches()
    return {
        dist.metadata["Name"].lower(): dist.version
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"]
    }


def report_install(before: dict[str, str]) -> InstallReport:
    """Print which distributions an install added or changed, and whether to restart.

    Args:
        before: {lower-case distribution name: version} taken before the
            install, as the first cell of each chapter builds it.

    A restart is needed when a changed distribution provides a module that is
    already imported in this process (torch and transformers above all).
    """
    after = installed_distributions()
    added = {name: after[name] for name in sorted(set(after) - set(before))}
    changed = {
        name: (before[name], after[name])
        for name in sorted(set(after) & set(before))
        if before[name] != after[name]
    }
    report = InstallReport(added, changed, _imported_modules_of(changed))
    _print_install_report(report)
    return report


def _imported_modules_of(distributions) -> list[str]:
    provided = importlib.metadata.packages_distributions()
    modules = []
    for module, dists in sorted(provided.items()):
        touched = {dist.lower() for dist in dists} & set(distributions)
        if touched and module in sys.modules:
            modules.append(module)
    return modules


def _print_install_report(report: InstallReport) -> None:
    if not report.added and not report.changed:
        print("llmlab install: nothing added or changed.")
    if report.added:
        names = ", ".join(f"{name} {version}" for name, version in report.added.items())
        print(f"llmlab install: added {len(report.added)}: {names}")
    if report.changed:
        names = ", ".join(
            f"{name} {old} -> {new}" for name, (old, new) in report.changed.items()
        )
        print(f"llmlab install: changed {len(report.changed)}: {names}")
    if report.restart_needed:
        print(
            "Restart needed: already imported before the install: "
            f"{', '.join(report.restart_modules)}. Restart the runtime "
            "(Colab: Runtime > Restart session), then run the notebook from the top."
        )
    else:
        print("No restart needed.")


def stale_imports() -> dict[str, tuple[str, str]]:
    """Return {module: (imported version, installed version)} where they differ."""
    stale = {}
    for module_name, distribution in BOOK_MODULES.items():
        module = sys.modules.get(module_name)
        imported = getattr(module, "__version__", None)
        if not isinstance(imported, str):
            continue
        try:
            installed = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
        if not _same_version(imported, installed):
            stale[module_name] = (imported, installed)
    return stale


def _same_version(left: str, right: str) -> bool:
    try:
        return Version(left) == Version(right)
    except InvalidVersion:
        return left == right


def warn_stale_imports() -> dict[str, tuple[str, str]]:
    """Warn with `RestartRequiredWarning` for each module upgraded after its import."""
    stale = stale_imports()
    for module, (imported, installed) in stale.items():
        warnings.warn(
            f"{module} {imported} is imported but {installed} is installed: it "
            "was upgraded after the import. Restart the runtime (Colab: Runtime > "
            "Restart session) and run the notebook from the top.",
            RestartRequiredWarning,
            stacklevel=3,
        )
    return stale
