"""JVM method descriptors as people read them: ``(I)I`` becomes ``(int): int``.

Android traces name methods by their bytecode descriptor.  Sentry shows the Java form,
with class names optionally remapped through a ProGuard mapping (`remap_class`): the
deobfuscate stage and profd.symbols' ProGuard answers both write it.
"""

from __future__ import annotations

from collections.abc import Callable

JAVA_BASE_TYPES = {
    "Z": "boolean",
    "B": "byte",
    "C": "char",
    "S": "short",
    "I": "int",
    "J": "long",
    "F": "float",
    "D": "double",
    "V": "void",
}

RemapClass = Callable[[str], str | None]


def parse_signature(signature: str) -> tuple[list[str], str]:
    """Split a descriptor into parameter tokens and the return token (``[], ""`` if malformed)."""
    if not signature.startswith("("):
        return [], ""
    params, paren, returned = signature[1:].rpartition(")")
    if not paren:
        return [], ""
    tokens: list[str] = []
    arrays = 0
    i = 0
    while i < len(params):
        char = params[i]
        if char in JAVA_BASE_TYPES:
            tokens.append(params[i - arrays : i + 1])
            arrays = 0
        elif char == "L":
            end = params.find(";", i)
            if end < 0:
                return [], ""
            tokens.append(params[i - arrays : end + 1])
            arrays = 0
            i = end
        elif char == "[":
            arrays += 1
        else:
            arrays = 0
        i += 1
    return tokens, returned


def java_type(token: str, remap_class: RemapClass | None = None) -> str:
    if not token:
        return ""
    head = token[0]
    if head in JAVA_BASE_TYPES:
        return JAVA_BASE_TYPES[head]
    if head == "L":
        if not token.endswith(";"):
            return token
        name = token[1:-1].replace("/", ".")
        if remap_class is not None:
            return remap_class(name) or name
        return name
    if head == "[":
        return java_type(token[1:], remap_class) + "[]"
    return token


def deobfuscate_signature(
    signature: str | None, remap_class: RemapClass | None = None
) -> tuple[list[str], str] | None:
    if not signature:
        return None
    params, returned = parse_signature(signature)
    if not params and not returned:
        return None
    return [java_type(p, remap_class) for p in params], java_type(returned, remap_class)


def format_signature(types: tuple[list[str], str] | None) -> str:
    if types is None:
        return ""
    params, returned = types
    text = "(" + ", ".join(params) + ")"
    if returned and returned != "void":
        text += ": " + returned
    return text


def decode_signature(signature: str | None, remap_class: RemapClass | None = None) -> str:
    return format_signature(deobfuscate_signature(signature, remap_class))
