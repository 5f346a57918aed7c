import pytest

from profd.formats.jvm_signature import decode_signature, deobfuscate_signature


@pytest.mark.parametrize(
    ("descriptor", "formatted"),
    [
        ("", ""),
        ("()", ""),
        ("(L)", ""),
        ("()V", "()"),
        ("()Z", "(): boolean"),
        ("([I)V", "(int[])"),
        ("(III)V", "(int, int, int)"),
        ("([Ljava/lang/String;)V", "(java.lang.String[])"),
        ("([[J)V", "(long[][])"),
        ("(I)I", "(int): int"),
        ("([B)V", "(byte[])"),
        (
            "(Ljava/lang/String;Ljava/lang/String;)Ljava/lang/String;",
            "(java.lang.String, java.lang.String): java.lang.String",
        ),
    ],
)
def test_signature_table(descriptor: str, formatted: str) -> None:
    assert decode_signature(descriptor) == formatted


def test_class_names_are_remapped_when_a_mapping_knows_them() -> None:
    mapping = {"a.b.c": "com.example.app.UserRepository"}
    assert decode_signature("(La/b/c;)La/b/d;", mapping.get) == "(com.example.app.UserRepository): a.b.d"


def test_unparsable_descriptors_give_none() -> None:
    assert deobfuscate_signature(None) is None
    assert deobfuscate_signature("V") is None
    assert deobfuscate_signature("(Ljava/lang/String") is None
