"""The private functions-framework internals service/server_tuning.py patches: present, and patched."""

import pytest

from service import server_tuning


def test_every_patched_internal_exists_in_the_installed_functions_framework():
    from importlib.metadata import version

    missing = server_tuning.missing_internals()
    assert not missing, (f"functions-framework {version('functions-framework')} moved {missing}; "
                         "service/server_tuning.py must follow before this version can be used")


def test_apply_patches_what_it_lists(monkeypatch):
    from functions_framework import aio
    from functions_framework._http import gunicorn

    targets = ((gunicorn.GunicornApplication, "load_config"), (gunicorn.UvicornApplication, "load_config"),
               (aio, "_create_asgi_app_with_function"))
    for owner, name in targets:  # back to functions-framework's own (main.py may have patched them); restored after
        current = getattr(owner, name)
        monkeypatch.setattr(owner, name, getattr(current, "original", current))
    assert not any(getattr(getattr(owner, name), "tuned", False) for owner, name in targets)
    server_tuning.apply(8)
    assert all(getattr(owner, name).tuned for owner, name in targets)


def test_apply_refuses_to_start_when_an_internal_moved(monkeypatch):
    from functions_framework import aio

    monkeypatch.delattr(aio, "_create_asgi_app_with_function")
    with pytest.raises(RuntimeError, match="lacks functions_framework.aio._create_asgi_app_with_function"):
        server_tuning.apply(8)


def test_the_framework_404_gets_the_json_shape_of_each_protocol(make_client, model_dir):
    client = make_client(MODEL_URI=model_dir, MODEL_WARMUP="false")
    plain = client.get("/favicon.ico")
    assert plain.status_code == 404 and plain.json()["error"]["code"] == 404
    v2 = client.post("/v2", json={})
    assert v2.status_code == 405 and isinstance(v2.json()["error"], str)


@pytest.mark.parametrize("port, bind", [(None, "127.0.0.1:8080"), (7080, "127.0.0.1:7080")])
def test_apply_binds_the_port_given_over_the_command_line_one(monkeypatch, port, bind):
    from functions_framework._http import gunicorn

    for application in (gunicorn.GunicornApplication, gunicorn.UvicornApplication):
        current = application.load_config
        monkeypatch.setattr(application, "load_config", getattr(current, "original", current))
    server_tuning.apply(8, port)
    for application in (gunicorn.GunicornApplication, gunicorn.UvicornApplication):
        assert application(None, "127.0.0.1", 8080, False).cfg.bind == [bind]
