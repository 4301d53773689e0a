"""The first administrator of an empty lab: created once, random password, file readable by the owner only."""

import stat

import pytest

from layerlab.apps.accounts.initial import INITIAL_ADMIN, initial_admin_ensure


@pytest.mark.django_db
def test_empty_lab_gets_one_admin_with_a_private_random_password(tmp_path, django_user_model):
    password, path = initial_admin_ensure(home=tmp_path)
    admin = django_user_model.objects.get(username=INITIAL_ADMIN)
    assert admin.is_superuser and admin.check_password(password)
    assert path.read_text().strip() == password and len(password) >= 16
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert initial_admin_ensure(home=tmp_path) is None  # never twice
    other_home = tmp_path / "other"
    assert initial_admin_ensure(home=other_home) is None and not other_home.exists()


@pytest.mark.django_db
def test_a_lab_with_users_gets_no_admin(tmp_path, django_user_model):
    django_user_model.objects.create_user("alice", password="x")
    assert initial_admin_ensure(home=tmp_path) is None
    assert not django_user_model.objects.filter(username=INITIAL_ADMIN).exists()
