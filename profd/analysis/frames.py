"""What a frame is to the analysis: its package, whether it is the user's code, its identity.

These are vroom's rules (Sentry's profile store), so that "slowest functions" and their
fingerprints mean in profd what they mean in Sentry.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Frame = dict[str, Any]

_WINDOWS_PATH = re.compile(r"^([a-z]:\\|\\\\)", re.IGNORECASE)
_LIBRARY_SUFFIXES = (".dylib", ".so", ".a", ".dll", ".exe")

# Python modules that are not the application's: the standard library and the SDK itself.
# Frames only ever come from Python source files, so C-only entries never match anything.
_PYTHON_SYSTEM_MODULES = frozenset(sys.stdlib_module_names) | {
    "sentry_sdk",
    # Removed from recent CPython but still seen in profiles of older runtimes.
    "asynchat",
    "asyncore",
    "binhex",
    "distutils",
    "dummy_threading",
    "formatter",
    "imp",
    "macpath",
    "parser",
    "smtpd",
    "symbol",
}
_PYTHON_SYSTEM_PATHS = ("/site-packages/", "/dist-packages/", "\\site-packages\\", "\\dist-packages\\")
_JS_SYSTEM_PATH = re.compile(r"node_modules|^(@moz-extension|chrome-extension)")
_COCOA_APP_PATHS = ("/Developer/Xcode/DerivedData", "/data/Containers/Bundle/Application", ".app")
_RUST_SYSTEM_PREFIXES = ("/usr/lib/system/", "/rustc/", "/usr/local/rustup/", "/usr/local/cargo/")

# Frames that are never anyone's slow function.
_DENIED = {"cocoa": frozenset({"main"})}
# The platforms on which a frame needs more than a function name to be a function.
_PLATFORM_RULES = frozenset({"android", "java", "cocoa", *_DENIED})

ANDROID_SYSTEM_PACKAGES = (
    "android.",
    "androidx.",
    "com.android.",
    "com.google.android.",
    "com.motorola.",
    "java.",
    "javax.",
    "kotlin.",
    "kotlinx.",
    "retrofit2.",
    "sun.",
)


def trim_package(package: str) -> str:
    """The library's file name without its extension: ``/usr/lib/libc.so`` -> ``libc``."""
    separator = "\\" if _WINDOWS_PATH.match(package) else "/"
    parts = package.split(separator)
    name = parts[-1] if parts[-1] or len(parts) < 2 else parts[-2]
    for suffix in _LIBRARY_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def module_or_package(frame: Frame) -> str:
    module = frame.get("module")
    if module:
        return str(module)
    package = frame.get("package")
    return trim_package(package) if package else ""


def is_symbolicated(frame: Frame) -> bool:
    return (frame.get("data") or {}).get("symbolicator_status") == "symbolicated"


def is_main(frame: Frame) -> bool:
    return is_symbolicated(frame) and frame.get("function") in ("main", "UIApplicationMain")


def is_application(frame: Frame, platform: str | None) -> bool:
    """vroom's in_app rule for a frame of `platform`."""
    path = frame.get("abs_path") or ""
    if platform == "node":
        return not path.startswith("node:") and "node_modules" not in path
    if platform == "javascript":
        if (frame.get("function") or "").startswith("["):
            return False
        return not path or not _JS_SYSTEM_PATH.search(path)
    if platform == "cocoa":
        return _cocoa_is_application(frame)
    if platform == "rust":
        package = frame.get("package") or ""
        return (
            bool(package)
            and "/library/std/src/" not in package
            and not package.startswith(_RUST_SYSTEM_PREFIXES)
        )
    if platform == "python":
        if any(marker in path for marker in _PYTHON_SYSTEM_PATHS) or path.startswith("/usr/local/"):
            return False
        top = (frame.get("module") or "").split(".", 1)[0]
        return top not in _PYTHON_SYSTEM_MODULES
    if platform == "php":
        return "/vendor/" not in path
    return False


def _cocoa_is_application(frame: Frame) -> bool:
    if is_main(frame) or module_or_package(frame) in ("Sentry", "hermes"):
        return False
    package = frame.get("package") or ""
    return package.startswith(("/private/var/containers", "/var/containers")) or any(
        marker in package for marker in _COCOA_APP_PATHS
    )


def is_android_application(class_name: str, app_identifier: str | None) -> bool:
    if app_identifier:
        return class_name.startswith(app_identifier + ".")
    return not class_name.startswith(ANDROID_SYSTEM_PACKAGES)


def should_aggregate(frame: Frame, profile_platform: str) -> bool:
    """Whether the frame can be a "function" in function metrics (named, symbolicated...)."""
    function = frame.get("function")
    if not function:
        return False
    platform = frame.get("platform") or profile_platform
    if function in _DENIED.get(platform, ()):
        return False
    if platform in ("android", "java"):
        if (frame.get("data") or {}).get("deobfuscation_status") == "partial":
            return False
        return "." in module_or_package(frame)
    if platform in ("javascript", "node"):
        return True
    if platform == "cocoa":
        return (frame.get("data") or {}).get("symbolicator_status") == "symbolicated"
    return True


@dataclass(frozen=True)
class FrameFacts:
    """What the analysis needs of each frame of a profile, computed in one pass per profile."""

    frames: list[Frame]
    package: list[str]  # module_or_package
    function: list[str]
    application: npt.NDArray[np.bool_]  # in_app, where unknown counts as application
    aggregatable: npt.NDArray[np.bool_]  # can be a function in function metrics
    # Frames with equal identity are one call-tree node: package (or file), function and
    # address, but not the line.  `identity_hash` is a stable hash of it (across processes).
    identity: list[int]
    identity_hash: list[int]

    @classmethod
    def of(cls, frames: list[Frame], platform: str) -> FrameFacts:
        packages = [module_or_package(f) for f in frames]
        functions = [f.get("function") or "" for f in frames]
        identities: dict[tuple[str, str, str], int] = {}
        known = _identity_hashes.get
        keys = [
            (package or f.get("filename") or "-", function or "-", f.get("instruction_addr") or "")
            for f, package, function in zip(frames, packages, functions, strict=True)
        ]
        return cls(
            frames=frames,
            package=packages,
            function=functions,
            application=np.fromiter((f.get("in_app") is not False for f in frames), bool, len(frames)),
            aggregatable=np.fromiter(
                (
                    # `should_aggregate`, whose answer is "has a name" on most platforms.
                    bool(function)
                    if (f.get("platform") or platform) not in _PLATFORM_RULES
                    else should_aggregate(f, platform)
                    for f, function in zip(frames, functions, strict=True)
                ),
                bool,
                len(frames),
            ),
            identity=[identities.setdefault(key, len(identities)) for key in keys],
            identity_hash=[known(key) or identity_hash(key) for key in keys],
        )


_PATH_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1
_identity_hashes: dict[tuple[str, str, str], int] = {}


def identity_hash(identity: tuple[str, str, str]) -> int:
    """FNV-1a of a frame's identity, remembered (Python's own hash changes per process)."""
    found = _identity_hashes.get(identity)
    if found is None:
        if len(_identity_hashes) > 200_000:
            _identity_hashes.clear()
        value = 0xCBF29CE484222325
        for byte in "\0".join(identity).encode():
            value = ((value ^ byte) * _PATH_PRIME) & _MASK64
        found = _identity_hashes[identity] = value
    return found


def path_step(parent: int, identity: int) -> int:
    """The hash of a path one frame deeper (0 is the empty path above the roots)."""
    return (((parent * _PATH_PRIME) & _MASK64) ^ identity) | 1
