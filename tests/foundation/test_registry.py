import pytest

from affectlab.registry import Registry, UnknownNameError


def test_registry_lookup_suggests_close_names_and_lists_all():
    reg = Registry("widget")

    @reg.register("alpha")
    class Alpha:  # noqa: D401
        pass

    assert reg.get("alpha") is Alpha and Alpha.registry_name == "alpha"
    with pytest.raises(UnknownNameError) as err:
        reg.get("alpah")
    assert "Did you mean 'alpha'" in str(err.value) and "Valid widgets: alpha" in str(err.value)


def test_registering_two_classes_under_one_name_fails():
    reg = Registry("widget")
    reg.register("a")(type("A", (), {}))
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(type("B", (), {}))
